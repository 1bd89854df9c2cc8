// Package e2e proves the delivery promises of DESIGN.md end to end: its tests build the plugin
// .so and the C host of test/host, drive the .so as Fluent Bit does against moto_server (behind
// its checking proxy) and the project's OpenSearch _bulk endpoint, then read every stream and
// every document back and count each record by a sequence number it carries. One Go-level test
// runs three instances of internal/delivery with real destinations under concurrent flushes
// (meant for -race). The package has no non-test code.
package e2e
