package fbconf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func env(m map[string]string) Options {
	return Options{
		LookupEnv: func(k string) (string, bool) { v, ok := m[k]; return v, ok },
		Hostname:  func() (string, error) { return "node-1", nil },
	}
}

type kv struct{ k, v string }

func props(s *Section) []kv {
	var out []kv
	for _, p := range s.Props {
		out = append(out, kv{p.Key, p.Value})
	}
	return out
}

func TestClassic(t *testing.T) {
	src := "# comment\r\n" +
		"@SET CLUSTER=from-set\n" +
		"[SERVICE]\n" +
		"    Flush        1\n" +
		"    # indented comment\n" +
		"\n" +
		"[OUTPUT]\n" +
		"    Name                cloudwatch_opensearch\r\n" +
		"    Match               application.*\n" +
		"    region              ${AWS_REGION}\n" +
		"    log_group_template  /aws/containerinsights/${CLUSTER}.$kubernetes['namespace_name']\n" +
		"    log_stream_prefix   ${HOST_NAME}-\n" +
		"    host                ${HOSTNAME}\n" +
		"    Match               second.*\n" +
		"    log_key             trailing spaces   \n" +
		"[output]\n" +
		"    name stdout\n"
	c, err := Parse([]byte(src), "/etc/fluent-bit/fluent-bit.conf", Classic, env(map[string]string{"AWS_REGION": "ap-northeast-2", "CLUSTER": "from-env", "HOST_NAME": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sections) != 3 {
		t.Fatalf("sections = %d, want 3", len(c.Sections))
	}
	if got := c.Sections[0]; got.Kind != "service" || got.Line != 3 || !reflect.DeepEqual(props(&got), []kv{{"Flush", "1"}}) {
		t.Errorf("service = %+v", got)
	}
	outs := c.Find("output", "CloudWatch_OpenSearch")
	if len(outs) != 1 {
		t.Fatalf("Find = %d outputs", len(outs))
	}
	o := outs[0]
	want := []kv{
		{"Name", "cloudwatch_opensearch"},
		{"Match", "application.*"},
		{"region", "ap-northeast-2"},
		{"log_group_template", "/aws/containerinsights/from-set.$kubernetes['namespace_name']"}, // @SET wins over env
		{"log_stream_prefix", "-"}, // empty env var = unset
		{"host", "node-1"},         // HOSTNAME preset from the host name
		{"Match", "second.*"},
		{"log_key", "trailing spaces"},
	}
	if got := props(o); !reflect.DeepEqual(got, want) {
		t.Errorf("props\n got %q\nwant %q", got, want)
	}
	if v, _ := o.Get("MATCH"); v != "application.*" {
		t.Errorf("Get(MATCH) = %q, want the first value as Fluent Bit", v)
	}
	if _, ok := o.Get("missing"); ok {
		t.Error("Get(missing) found")
	}
	if p := o.Props[4]; !reflect.DeepEqual(p.Unset, []string{"HOST_NAME"}) || p.Raw != "${HOST_NAME}-" || p.Line != 12 {
		t.Errorf("prefix property = %+v", p)
	}
	if len(c.Find("output", "")) != 2 {
		t.Error("Find with any plugin")
	}
	if c.Vars["CLUSTER"] != "from-set" {
		t.Errorf("Vars = %v", c.Vars)
	}
}

func TestClassicErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"no bracket", "[OUTPUT\n    Name x\n", 1, "bad header definition"},
		{"empty section", "[ ]\n", 1, "bad header definition: empty section name"},
		{"not indented", "[OUTPUT]\nName x\n", 2, "entries must be indented"},
		{"tab separator", "[OUTPUT]\n    Name\tx\n", 2, "key and value must be separated by a space"},
		{"no value", "[OUTPUT]\n    Name\n", 2, "undefined value for key Name"},
		{"empty value", "[OUTPUT]\n    Name    \n", 2, "key Name has an empty value"},
		{"less indented", "[OUTPUT]\n    Name x\n  Match y\n", 3, "invalid indentation level"},
		{"mixed tabs", "[OUTPUT]\n    Name x\n\tMatch y\n", 3, "invalid indentation level"},
		{"extra indentation", "[OUTPUT]\n    Name x\n        Match y\n", 3, "extra indentation outside a group"},
		{"odd extra indentation", "[OUTPUT]\n    Name x\n      Match y\n", 3, "invalid indentation level (extra indentation)"},
		{"entry before section", "    Name x\n", 1, "entry outside any [SECTION]"},
		{"bad set", "@SET novalue\n", 1, "@SET expects NAME=VALUE"},
		{"include missing", "@INCLUDE nope.conf\n", 1, "include: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.conf")
			_, err := Parse([]byte(tc.src), file, Classic, env(nil))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.File != file || e.Line != tc.line || !strings.Contains(e.Msg, tc.want) {
				t.Errorf("err = %q (line %d), want line %d and %q", err, e.Line, tc.line, tc.want)
			}
			if !strings.HasPrefix(err.Error(), file+":"+strconv.Itoa(tc.line)+": ") {
				t.Errorf("Error() = %q, want file:line: prefix", err)
			}
		})
	}
}

func TestClassicGroupsAreNotProperties(t *testing.T) {
	src := "[MULTILINE_PARSER]\n    name multi\n    [RULE]\n        state start\n        regex /x/\n    type regex\n"
	c, err := Parse([]byte(src), "x.conf", Classic, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := props(&c.Sections[0]); !reflect.DeepEqual(got, []kv{{"name", "multi"}, {"type", "regex"}}) {
		t.Errorf("props = %v", got)
	}
}

func TestClassicInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.conf", "[SERVICE]\n    Flush 1\n@INCLUDE outputs/*.conf\n    Grace 5\n@INCLUDE ${SUB}.conf\n")
	write("outputs/b.conf", "[OUTPUT]\n  Name b\n")
	write("outputs/a.conf", "[OUTPUT]\n  Name a\n  Match ${M}\n")
	write("sub.conf", "@SET M=from-sub\n[FILTER]\n\tName f\n")
	c, err := ReadFile(filepath.Join(dir, "main.conf"), env(map[string]string{"SUB": "sub"}))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, s := range c.Sections {
		kinds = append(kinds, s.Kind+":"+s.Name()+":"+filepath.Base(s.File))
	}
	want := []string{"service::main.conf", "output:a:a.conf", "output:b:b.conf", "filter:f:sub.conf"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("sections = %v, want %v", kinds, want)
	}
	// An entry after an include belongs to the including file's section.
	if v, _ := c.Sections[0].Get("grace"); v != "5" {
		t.Errorf("service grace = %q", v)
	}
	// @SET in an included file applies everywhere, as Fluent Bit applies it before properties.
	if v, _ := c.Sections[1].Get("match"); v != "from-sub" {
		t.Errorf("match = %q", v)
	}

	write("loop.conf", "@INCLUDE loop2.conf\n")
	write("loop2.conf", "@INCLUDE loop.conf\n")
	_, err = ReadFile(filepath.Join(dir, "loop.conf"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "already included") {
		t.Errorf("include loop: err = %v", err)
	}
}

func TestYAML(t *testing.T) {
	src := `env:
  CLUSTER_NAME: from-env-section
service:
  flush: 1
pipeline:
  inputs:
    - name: tail
      path: /var/log/containers/*.log
  outputs:
    - name: cloudwatch_opensearch
      alias: es_cw
      match: 'application.*'
      log_group_template: /aws/containerinsights/${CLUSTER_NAME}.$kubernetes['namespace_name']
      log_stream_prefix: ${HOST_NAME}-
      workers: 2
      header: [a, b]
      processors:
        logs:
          - name: content_modifier
    - name: stdout
      match: '*'
`
	c, err := Parse([]byte(src), "fluent-bit.yaml", YAML, env(map[string]string{"CLUSTER_NAME": "process-env", "HOST_NAME": "ip-10-0-1-23"}))
	if err != nil {
		t.Fatal(err)
	}
	outs := c.Find("output", "cloudwatch_opensearch")
	if len(outs) != 1 || len(c.Find("output", "")) != 2 || len(c.Find("input", "tail")) != 1 || len(c.Find("service", "")) != 1 {
		t.Fatalf("sections = %+v", c.Sections)
	}
	want := []kv{
		{"name", "cloudwatch_opensearch"},
		{"alias", "es_cw"},
		{"match", "application.*"},
		{"log_group_template", "/aws/containerinsights/from-env-section.$kubernetes['namespace_name']"},
		{"log_stream_prefix", "ip-10-0-1-23-"},
		{"workers", "2"},
		{"header", "a"},
		{"header", "b"},
	}
	if got := props(outs[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("props\n got %q\nwant %q", got, want)
	}
	if outs[0].Line != 10 || outs[0].Props[3].Line != 13 {
		t.Errorf("lines: section %d, template %d", outs[0].Line, outs[0].Props[3].Line)
	}
}

func TestYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"syntax", "pipeline: [\n", "invalid YAML"},
		{"top level list", "- a\n", "x.yaml:1: the top level must be a map"},
		{"outputs not list", "pipeline:\n  outputs:\n    name: x\n", "x.yaml:3: outputs must be a list"},
		{"entry not map", "pipeline:\n  outputs:\n    - x\n", "x.yaml:3: output entry must be a map"},
		{"unknown pipeline key", "pipeline:\n  sinks: []\n", "x.yaml:2: unknown pipeline section sinks"},
		{"env not map", "env: [a]\n", "x.yaml:1: env must be a map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.yaml", YAML, env(nil))
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestYAMLIncludes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "outputs.yaml"), []byte("pipeline:\n  outputs:\n    - name: cloudwatch_opensearch\n      match: ${M}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.yml")
	if err := os.WriteFile(main, []byte("env:\n  M: app.*\nincludes:\n  - outputs.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadFile(main, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != YAML {
		t.Errorf("format = %v", c.Format)
	}
	outs := c.Find("output", "cloudwatch_opensearch")
	if len(outs) != 1 {
		t.Fatalf("outputs = %d", len(outs))
	}
	if v, _ := outs[0].Get("match"); v != "app.*" {
		t.Errorf("match = %q", v)
	}
}

func TestExpand(t *testing.T) {
	r := &reader{o: env(map[string]string{"A": "1", "EMPTY": ""}), vars: map[string]string{"B": "2"}}
	r.o.defaults()
	for _, tc := range []struct {
		in, want string
		unset    []string
	}{
		{"plain", "plain", nil},
		{"${A}${B}", "12", nil},
		{"x-${A}-y", "x-1-y", nil},
		{"${NOPE}/${EMPTY}/${NOPE}", "//", []string{"NOPE", "EMPTY"}},
		{"${HOSTNAME}", "node-1", nil},
		{"${unterminated", "${unterminated", nil},
		{"$kubernetes['a'] $(tag) $A", "$kubernetes['a'] $(tag) $A", nil}, // template syntax is not env syntax
	} {
		var unset []string
		if got := r.expand(tc.in, &unset); got != tc.want || !reflect.DeepEqual(unset, tc.unset) {
			t.Errorf("expand(%q) = %q unset %v, want %q unset %v", tc.in, got, unset, tc.want, tc.unset)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for in, want := range map[string]Format{"a.yaml": YAML, "b.YML": YAML, "c.conf": Classic, "fluent-bit": Classic} {
		if got := FormatOf(in); got != want {
			t.Errorf("FormatOf(%q) = %v", in, got)
		}
	}
}

// FuzzClassic: any input either fails with *Error or yields sections whose properties have a
// key and a value, never a panic.
func FuzzClassic(f *testing.F) {
	f.Add("[OUTPUT]\n    Name x\n    Match *\n")
	f.Add("@SET A=b\n[S]\n\tk ${A}\n\t[G]\n\t\tx y\n")
	f.Add("[")
	f.Fuzz(func(t *testing.T, src string) {
		c := parseOrError(t, src, "f.conf", Classic, env(map[string]string{"A": "1"}))
		for _, s := range c.sections() {
			for _, p := range s.Props {
				if p.Key == "" || p.Raw == "" {
					t.Fatalf("empty key or value: %+v", p)
				}
			}
		}
	})
}

// parseOrError parses src with includes unreadable and fails t unless it gives sections that
// all have a kind, or a *Error; on error the result is nil.
func parseOrError(t *testing.T, src, name string, f Format, o Options) *Config {
	o.ReadFile = func(string) ([]byte, error) { return nil, os.ErrNotExist }
	c, err := Parse([]byte(src), name, f, o)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not *Error", err)
		}
		return nil
	}
	for _, s := range c.Sections {
		if s.Kind == "" {
			t.Fatal("empty section kind")
		}
	}
	return c
}

// sections is c's sections, none for a nil c.
func (c *Config) sections() []Section {
	if c == nil {
		return nil
	}
	return c.Sections
}

// FuzzYAML: any input either fails with *Error or yields sections, never a panic.
func FuzzYAML(f *testing.F) {
	f.Add("pipeline:\n  outputs:\n    - name: x\n      match: '*'\n")
	f.Add("env:\n  A: 1\nservice:\n  flush: ${A}\n")
	f.Add("includes: [a]\n")
	f.Fuzz(func(t *testing.T, src string) {
		parseOrError(t, src, "f.yaml", YAML, env(nil))
	})
}

// TestPlugins: the .so paths a config loads itself come out the same way from both formats, a
// "plugins" section with one path property each, ${VAR} expanded.
func TestPlugins(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		src  string
	}{
		{"fluent-bit.conf", Classic, "[PLUGINS]\n    Path /fluent-bit/plugins/a.so\n    Path ${DIR}/b.so\n[OUTPUT]\n    Name a\n"},
		{"fluent-bit.yaml", YAML, "plugins:\n  - /fluent-bit/plugins/a.so\n  - ${DIR}/b.so\npipeline:\n  outputs:\n    - name: a\n"},
	} {
		c, err := Parse([]byte(tc.src), tc.name, tc.f, env(map[string]string{"DIR": "/opt"}))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ps := c.Find("plugins", "")
		if len(ps) != 1 || !reflect.DeepEqual(props(ps[0]), []kv{{"path", "/fluent-bit/plugins/a.so"}, {"path", "/opt/b.so"}}) &&
			!reflect.DeepEqual(props(ps[0]), []kv{{"Path", "/fluent-bit/plugins/a.so"}, {"Path", "/opt/b.so"}}) {
			t.Errorf("%s: plugins sections %+v", tc.name, ps)
		}
	}
	if _, err := Parse([]byte("plugins: /a.so\n"), "f.yaml", YAML, env(nil)); err == nil || !strings.Contains(err.Error(), "plugins must be a list") {
		t.Errorf("plugins as a scalar: err = %v", err)
	}
}
