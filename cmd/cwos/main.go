// Command cwos is the dry-run tool of the cloudwatch_opensearch Fluent Bit output: it reads a
// Fluent Bit configuration (classic or YAML) the way Fluent Bit does, validates the plugin's
// [OUTPUT] block with the plugin's own code, and renders the log group, log stream and index of
// sample records, so names can be trusted before anything is deployed.
//
//	cwos render --config FILE [--output NAME] [--records FILE.jsonl | --record JSON] [--tag TAG] [--time RFC3339]
//	cwos check  --config FILE [--output NAME]
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
