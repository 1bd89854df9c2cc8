// Command healthcheck asks Fluent Bit's HTTP server whether it is healthy. The official Fluent
// Bit image is distroless (no shell, no curl), so the image's HEALTHCHECK and the demo's compose
// healthcheck run this static binary instead: exit 0 on a 2xx answer, 1 on any other answer or
// no answer, 2 on a bad command line. Kubernetes does not need it: its probes speak HTTP.
//
//	healthcheck [-timeout 3s] [URL]   (default http://127.0.0.1:2020/api/v1/health)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// DefaultURL is Fluent Bit's health endpoint on the port the shipped configs use.
const DefaultURL = "http://127.0.0.1:2020/api/v1/health"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run checks the URL once and returns the process exit code.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 || *timeout <= 0 {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout 3s] [URL]")
		return 2
	}
	target := DefaultURL
	if fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "healthcheck: %q is not an http(s) URL\n", target)
		return 2
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 2
	}
	client := &http.Client{
		// A health endpoint that redirects is not the one we meant to ask.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s: %q\n", u.Redacted(), resp.Status, body)
		return 1
	}
	return 0
}
