// Package abi tests the plugin through Fluent Bit's C ABI: its tests build the c-shared .so
// and the C host of test/host (which loads the .so the way Fluent Bit's Go proxy does), run
// scripted scenarios and check the host's exit status, the return codes it prints and the
// plugin's log lines. The package has no non-test code.
package abi
