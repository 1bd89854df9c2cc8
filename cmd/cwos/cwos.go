package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/event"
	"github.com/cwos/cloudwatch-opensearch/internal/fbconf"
	"github.com/cwos/cloudwatch-opensearch/internal/report"
	"github.com/cwos/cloudwatch-opensearch/internal/template"
)

// Plugin is the Name of the plugin's [OUTPUT] blocks.
const Plugin = "cloudwatch_opensearch"

// DefaultTag is the tag of rendered records when --tag is not given.
const DefaultTag = "cwos.render"

const usage = `usage:
  cwos render --config FILE [--output NAME] [--records FILE.jsonl | --record JSON] [--tag TAG] [--time RFC3339]
      Prints {"log_group":..,"log_stream":..,"index":..,"fallback":[..]} for each JSON record
      (one per line, from stdin by default; [time, record] lines carry their own time).
  cwos check --config FILE [--output NAME]
      Validates the cloudwatch_opensearch [OUTPUT] blocks with the plugin's own code and warns
      about settings Fluent Bit would accept silently. Exits 1 on errors.

--config is a classic (.conf) or YAML (.yaml/.yml) Fluent Bit configuration; ${VAR} is expanded
from @SET / env and the environment, as Fluent Bit does. --output picks a block by its Alias or
its position among the plugin's blocks (1, 2, ...).
`

// cli holds the process's streams, clock and environment, so tests run it in-process.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	lookupEnv      func(string) (string, bool)
}

// run executes one command and returns the exit code: 0 ok, 1 errors, 2 usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now, lookupEnv: os.LookupEnv}
	return c.run(args)
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return 2
	}
	switch args[0] {
	case "render":
		return c.render(args[1:])
	case "check":
		return c.check(args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usage)
		return 0
	}
	fmt.Fprintf(c.stderr, "cwos: unknown command %q\n%s", args[0], usage)
	return 2
}

func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cwos "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, usage) }
	return fs
}

// output is one [OUTPUT] block of the plugin.
type output struct {
	sec   *fbconf.Section
	pos   int // 1-based among the plugin's blocks
	alias string
}

func (o output) String() string {
	s := fmt.Sprintf("%s:%d: [OUTPUT] %s #%d", o.sec.File, o.sec.Line, Plugin, o.pos)
	if o.alias != "" {
		s += " (alias " + o.alias + ")"
	}
	return s
}

// load reads the configuration and picks the plugin's blocks (all of them when sel is "").
func (c *cli) load(path, sel string) ([]output, error) {
	if path == "" {
		return nil, errors.New("--config is required")
	}
	cf, err := fbconf.ReadFile(path, fbconf.Options{LookupEnv: c.lookupEnv})
	if err != nil {
		return nil, err
	}
	var outs []output
	for i, s := range cf.Find("output", Plugin) {
		alias, _ := s.Get("alias")
		outs = append(outs, output{sec: s, pos: i + 1, alias: alias})
	}
	if len(outs) == 0 {
		if cf.Format == fbconf.YAML {
			return nil, fmt.Errorf("%s: no pipeline.outputs entry with name: %s", path, Plugin)
		}
		return nil, fmt.Errorf("%s: no [OUTPUT] with Name %s", path, Plugin)
	}
	if sel == "" {
		return outs, nil
	}
	for _, o := range outs {
		if o.alias != "" && strings.EqualFold(o.alias, sel) {
			return []output{o}, nil
		}
	}
	if n, err := strconv.Atoi(sel); err == nil && n >= 1 && n <= len(outs) {
		return []output{outs[n-1]}, nil
	}
	var have []string
	for _, o := range outs {
		h := "#" + strconv.Itoa(o.pos)
		if o.alias != "" {
			h += " (alias " + o.alias + ")"
		}
		have = append(have, h)
	}
	return nil, fmt.Errorf("--output %s: no %s output with that alias or position; the file has %s", sel, Plugin, strings.Join(have, ", "))
}

// source is what Fluent Bit hands the plugin: the block's keys, the first value of a repeated
// key (Fluent Bit's property lookup returns the first).
func source(s *fbconf.Section) config.MapSource {
	m := config.MapSource{}
	for _, p := range s.Props {
		k := strings.ToLower(p.Key)
		if _, ok := m[k]; !ok {
			m[k] = p.Value
		}
	}
	return m
}

// parse runs the plugin's own config parser; the error lines are what Init would log.
func parse(o output) (*config.Config, []string) {
	cfg, err := config.Parse(source(o.sec))
	if err == nil {
		return cfg, nil
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return nil, lines
}

func (c *cli) check(args []string) int {
	fs := c.flags("check")
	file := fs.String("config", "", "Fluent Bit configuration file")
	sel := fs.String("output", "", "alias or position of the [OUTPUT] block")
	if fs.Parse(args) != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "cwos check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	outs, err := c.load(*file, *sel)
	if err != nil {
		fmt.Fprintf(c.stdout, "error: %v\n", err)
		return 1
	}
	nerr, nwarn := 0, 0
	for _, o := range outs {
		fmt.Fprintln(c.stdout, o)
		cfg, errs := parse(o)
		for _, e := range errs {
			fmt.Fprintf(c.stdout, "error: %s\n", e)
		}
		ws := warnings(o.sec, cfg)
		for _, w := range ws {
			fmt.Fprintf(c.stdout, "warning: %s\n", w)
		}
		nerr += len(errs)
		nwarn += len(ws)
	}
	fmt.Fprintf(c.stdout, "%s, %s, %s\n", plural(len(outs), "output"), plural(nerr, "error"), plural(nwarn, "warning"))
	if nerr > 0 {
		return 1
	}
	return 0
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// fluentBitKeys are consumed by Fluent Bit itself for every output.
var fluentBitKeys = []string{"name", "match", "match_regex", "alias", "workers", "retry_limit", "log_level",
	"log_suppress_interval", "storage.total_limit_size", "processors"}

// networkKeys are Fluent Bit's own network and TLS settings: consumed, but this plugin has its
// own HTTP clients and never sees them.
var networkKeys = []string{"host", "port", "ipv6", "tls", "tls.verify", "tls.verify_hostname", "tls.debug", "tls.ca_path",
	"tls.ca_file", "tls.crt_file", "tls.key_file", "tls.key_passwd", "tls.vhost"}

// warnings are settings Fluent Bit accepts silently but that do not do what the user meant.
func warnings(s *fbconf.Section, cfg *config.Config) []string {
	var out []string
	if v, ok := s.Get("workers"); !ok {
		out = append(out, "workers is not set: with 0 workers Fluent Bit runs every flush of this plugin on its engine thread; set workers 1 or more")
	} else if n, err := strconv.Atoi(v); err == nil && n < 1 {
		out = append(out, "workers "+v+": Fluent Bit runs every flush of this plugin on its engine thread; set workers 1 or more")
	}
	if v, ok := s.Get("retry_limit"); !ok {
		out = append(out, "Retry_Limit is not set: Fluent Bit's default (1) drops a chunk after one retry; set Retry_Limit no_limits")
	} else if strings.EqualFold(v, "no_retries") {
		out = append(out, "Retry_Limit no_retries: Fluent Bit drops a chunk the first time the plugin asks for a retry (after flush_timeout); set Retry_Limit no_limits")
	}

	seen := map[string]fbconf.Property{}
	for _, p := range s.Props {
		k := strings.ToLower(p.Key)
		if first, ok := seen[k]; ok {
			out = append(out, fmt.Sprintf("%s is set twice (lines %d and %d): Fluent Bit passes only the first, %q", p.Key, first.Line, p.Line, shown(k, first.Value)))
			continue
		}
		seen[k] = p
		switch {
		case config.Known(k) || contains(fluentBitKeys, k):
		case contains(networkKeys, k) || strings.HasPrefix(k, "net."):
			out = append(out, fmt.Sprintf("%s is a Fluent Bit network setting this plugin never sees; use opensearch_endpoint, opensearch_tls_verify, opensearch_tls_ca_file or cloudwatch_endpoint", p.Key))
		default:
			msg := fmt.Sprintf("unknown key %s: Fluent Bit ignores it silently", p.Key)
			if near := nearest(k); near != "" {
				msg += "; did you mean " + near + "?"
			}
			out = append(out, msg)
		}
		for _, v := range p.Unset {
			out = append(out, fmt.Sprintf("%s: ${%s} is not set, so it expands to nothing", p.Key, v))
		}
	}
	if cfg == nil {
		return out
	}
	for _, t := range []*template.Template{cfg.LogGroupTemplate, cfg.LogStreamTemplate, cfg.IndexTemplate} {
		if t == nil || (t == cfg.IndexTemplate && !cfg.OpenSearch) {
			continue
		}
		for _, n := range t.Notes() {
			out = append(out, t.Kind().String()+": "+n)
		}
	}
	for _, n := range []struct {
		key, value string
		kind       template.Kind
	}{
		{"log_group_name", cfg.LogGroupName, template.Group},
		{"log_stream_name", cfg.LogStreamName, template.Stream},
		{"log_stream_prefix", cfg.LogStreamPrefix, template.Stream},
	} {
		if n.value == "" {
			continue
		}
		if got := string(template.Sanitize(n.kind, nil, []byte(n.value))); got != n.value {
			out = append(out, fmt.Sprintf("%s %q is not a valid name; the plugin uses %q", n.key, n.value, got))
		}
	}
	return out
}

// shown masks secrets.
func shown(key, value string) string {
	if config.IsSecret(key) {
		return "****"
	}
	return value
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// nearest returns the known key closest to k, if it is a plausible typo.
func nearest(k string) string {
	best, bestD := "", 4
	for _, cand := range append(config.Keys(), fluentBitKeys...) {
		if d := distance(k, cand); d < bestD {
			best, bestD = cand, d
		}
	}
	if bestD > max(1, len(k)/4) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// line is one rendered record.
type line struct {
	LogGroup  string   `json:"log_group"`
	LogStream string   `json:"log_stream"`
	Index     *string  `json:"index"` // null when OpenSearch is off
	Fallback  []string `json:"fallback"`
}

func (c *cli) render(args []string) int {
	fs := c.flags("render")
	file := fs.String("config", "", "Fluent Bit configuration file")
	sel := fs.String("output", "", "alias or position of the [OUTPUT] block")
	recordsFile := fs.String("records", "", "JSON lines file of records (default: stdin)")
	record := fs.String("record", "", "one JSON record")
	tag := fs.String("tag", DefaultTag, "tag of the records")
	at := fs.String("time", "", "record time, RFC 3339 (default: now)")
	if fs.Parse(args) != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "cwos render: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *record != "" && *recordsFile != "" {
		fmt.Fprintln(c.stderr, "cwos render: use --record or --records, not both")
		return 2
	}
	when := c.now().UTC()
	if *at != "" {
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			fmt.Fprintf(c.stderr, "cwos render: --time %q: expected RFC 3339, e.g. 2023-02-22T01:00:00Z\n", *at)
			return 2
		}
		when = t.UTC()
	}
	outs, err := c.load(*file, *sel)
	if err != nil {
		fmt.Fprintf(c.stderr, "error: %v\n", err)
		return 1
	}
	if len(outs) > 1 {
		fmt.Fprintf(c.stderr, "error: %s has %d %s outputs; pick one with --output (alias or 1..%d)\n", *file, len(outs), Plugin, len(outs))
		return 1
	}
	cfg, errs := parse(outs[0])
	if errs != nil {
		fmt.Fprintln(c.stderr, outs[0])
		for _, e := range errs {
			fmt.Fprintf(c.stderr, "error: %s\n", e)
		}
		return 1
	}
	rep := report.New("cwos", c.stderr)
	rep.SetClock(c.now)
	index := cfg.IndexTemplate
	if !cfg.OpenSearch {
		index = nil
	}
	namer := template.NewNamer(template.NamerOptions{
		Group: cfg.LogGroupTemplate, GroupName: cfg.LogGroupName,
		Stream: cfg.LogStreamTemplate, StreamName: cfg.LogStreamName, StreamPrefix: cfg.LogStreamPrefix,
		Index: index, Report: rep, Now: c.now,
	})

	var in io.Reader = c.stdin
	name := "stdin"
	switch {
	case *record != "":
		in, name = strings.NewReader(*record), "--record"
	case *recordsFile != "" && *recordsFile != "-":
		f, err := os.Open(*recordsFile)
		if err != nil {
			fmt.Fprintf(c.stderr, "error: %v\n", err)
			return 1
		}
		defer f.Close()
		in, name = f, *recordsFile
	}
	var (
		scratch template.Scratch
		bad     int
		enc     = json.NewEncoder(c.stdout) // unbuffered: lines and warnings stay in order
	)
	enc.SetEscapeHTML(false)
	br := bufio.NewReader(in)
	for n := 1; ; n++ {
		raw, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			fmt.Fprintf(c.stderr, "error: %s: %v\n", name, rerr)
			bad++
			break
		}
		if data := bytes.TrimSpace(raw); len(data) > 0 {
			rec, t, hasTime, err := recordFromJSON(data)
			if err != nil {
				fmt.Fprintf(c.stderr, "error: %s:%d: %v\n", name, n, err)
				bad++
			} else {
				if !hasTime {
					t = when
				}
				names := namer.Names(&scratch, &event.Event{Time: t, Record: rec}, *tag)
				l := line{LogGroup: names.Group, LogStream: names.Stream, Fallback: names.Fallback.List()}
				if index != nil {
					l.Index = &names.Index
				}
				if err := enc.Encode(l); err != nil {
					fmt.Fprintf(c.stderr, "error: %v\n", err)
					return 1
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}
