package deploy_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cwos/cloudwatch-opensearch/internal/fbconf"
)

// fbConfig is what the deploy checks need from a Fluent Bit config, classic or YAML. Keys are
// lowercased (Fluent Bit matches them case-insensitively); values are as written.
type fbConfig struct {
	Service map[string]string
	Inputs  []map[string]string
	Filters []map[string]string
	Outputs []map[string]string
	Plugins []string // .so paths listed in the file itself ([PLUGINS] Path, or YAML plugins:)
}

// parseFBConfig reads a config, classic or YAML by its extension, with the project's own
// reader of Fluent Bit configs (internal/fbconf, the one cwos uses), and keeps values as
// written (before ${VAR} expansion). Stricter than Fluent Bit, because a shipped config should
// rely on none of these: includes are refused (a check that skipped an include would check
// nothing), and so are a key set twice in one section and sections or YAML top-level keys
// Fluent Bit does not know.
func parseFBConfig(name string, data []byte) (*fbConfig, error) {
	o := fbconf.Options{
		ReadFile:  func(p string) ([]byte, error) { return nil, fmt.Errorf("includes are not supported here (%s)", p) },
		LookupEnv: func(string) (string, bool) { return "", false },
		Hostname:  func() (string, error) { return "node", nil },
	}
	f := fbconf.FormatOf(name)
	if f == fbconf.YAML {
		var top map[string]yaml.Node
		if err := yaml.Unmarshal(data, &top); err == nil {
			for k := range top {
				if !slices.Contains([]string{"env", "includes", "service", "pipeline", "plugins", "parsers", "multiline_parsers", "customs"}, strings.ToLower(k)) {
					return nil, fmt.Errorf("%s: unknown top-level section %q", name, k)
				}
			}
		}
	}
	fc, err := fbconf.Parse(data, name, f, o)
	if err != nil {
		return nil, err
	}
	c := &fbConfig{Service: map[string]string{}}
	for i := range fc.Sections {
		s := &fc.Sections[i]
		m := map[string]string{}
		switch s.Kind {
		case "service":
			m = c.Service
		case "input":
			c.Inputs = append(c.Inputs, m)
		case "filter":
			c.Filters = append(c.Filters, m)
		case "output":
			c.Outputs = append(c.Outputs, m)
		case "plugins":
			for _, p := range s.Props {
				if strings.EqualFold(p.Key, "path") {
					c.Plugins = append(c.Plugins, p.Raw)
				}
			}
			continue
		case "parser", "multiline_parser", "custom":
			continue
		default:
			return nil, fmt.Errorf("%s:%d: unknown section [%s]", s.File, s.Line, s.Kind)
		}
		for _, p := range s.Props {
			k := strings.ToLower(p.Key)
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%s:%d: key %q set twice in [%s]", p.File, p.Line, k, s.Kind)
			}
			m[k] = p.Raw
		}
	}
	return c, nil
}

// canon makes values comparable across the two formats: booleans in one spelling.
func canon(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes":
		return "on"
	case "off", "false", "no":
		return "off"
	}
	return strings.TrimSpace(v)
}

// output returns the config's cloudwatch_opensearch [OUTPUT] (exactly one is expected).
func (c *fbConfig) output() (map[string]string, error) {
	var found []map[string]string
	for _, o := range c.Outputs {
		if strings.EqualFold(o["name"], "cloudwatch_opensearch") {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("want one cloudwatch_opensearch output, found %d", len(found))
	}
	return found[0], nil
}

// httpPort is the port Fluent Bit's HTTP server listens on (0 when the server is off).
func (c *fbConfig) httpPort() (int, error) {
	if canon(c.Service["http_server"]) != "on" {
		return 0, nil
	}
	p := c.Service["http_port"]
	if p == "" {
		return 2020, nil // Fluent Bit's default
	}
	return strconv.Atoi(p)
}

// graceSeconds is [SERVICE] Grace (Fluent Bit's default is 5).
func (c *fbConfig) graceSeconds() (float64, error) {
	g := c.Service["grace"]
	if g == "" {
		return 5, nil
	}
	return strconv.ParseFloat(g, 64)
}

// duration parses a plugin duration the way the plugin does: a plain number is seconds.
func duration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		v += "s"
	}
	return time.ParseDuration(v)
}

// exitGrace is the plugin's exit_grace (default 5s, SPEC.md).
func (c *fbConfig) exitGrace() (time.Duration, error) {
	o, err := c.output()
	if err != nil {
		return 0, err
	}
	if v := o["exit_grace"]; v != "" {
		return duration(v)
	}
	return 5 * time.Second, nil
}

// writablePaths are the files and directories Fluent Bit and the plugin write.
func (c *fbConfig) writablePaths() []string {
	var out []string
	if p := c.Service["storage.path"]; p != "" {
		out = append(out, p)
	}
	for _, in := range c.Inputs {
		if db := in["db"]; db != "" {
			out = append(out, db)
		}
	}
	for _, o := range c.Outputs {
		if d := o["dead_letter_file"]; d != "" {
			out = append(out, d)
		}
	}
	return out
}

func TestParseClassicConfig(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string
		check   func(*testing.T, *fbConfig)
	}{
		{
			name: "sections, comments, case and tabs",
			src: "# top\n[SERVICE]\n    HTTP_Port  2020\n    # inside\n    Grace 10\n[INPUT]\n    Name tail\n    multiline.parser docker, cri\n" +
				"[OUTPUT]\n    Name  cloudwatch_opensearch\n    log_group_template /a/$k['x'].$k['y']\n[PLUGINS]\n    Path /p/a.so\n    Path /p/b.so\n",
			check: func(t *testing.T, c *fbConfig) {
				if c.Service["http_port"] != "2020" || c.Service["grace"] != "10" {
					t.Errorf("service = %v", c.Service)
				}
				if c.Inputs[0]["multiline.parser"] != "docker, cri" {
					t.Errorf("input = %v", c.Inputs[0])
				}
				if c.Outputs[0]["log_group_template"] != "/a/$k['x'].$k['y']" {
					t.Errorf("output = %v", c.Outputs[0])
				}
				if strings.Join(c.Plugins, ",") != "/p/a.so,/p/b.so" {
					t.Errorf("plugins = %v", c.Plugins)
				}
			},
		},
		{name: "key outside a section", src: "Flush 1\n", wantErr: "must be indented under a [SECTION]"},
		{name: "include refused", src: "@INCLUDE other.conf\n", wantErr: "includes are not supported"},
		{name: "key without value", src: "[SERVICE]\n    Flush\n", wantErr: "undefined value"},
		{name: "tab between key and value", src: "[SERVICE]\n    Grace\t10\n", wantErr: "separated by a space"},
		{name: "duplicate key", src: "[OUTPUT]\n    Name a\n    name b\n", wantErr: "set twice"},
		{name: "unknown section", src: "[OUTPUTS]\n    Name a\n", wantErr: "unknown section"},
		{name: "bad header", src: "[SERVICE\n", wantErr: "missing ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFBConfig("fluent-bit.conf", []byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseYAMLConfig(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr string
		check   func(*testing.T, *fbConfig)
	}{
		{
			name: "service, pipeline, plugins",
			src: "plugins:\n  - /p/a.so\nservice:\n  HTTP_Port: 2020\n  http_server: on\npipeline:\n  inputs:\n    - name: tail\n      processors:\n        logs: []\n" +
				"  outputs:\n    - name: cloudwatch_opensearch\n      log_group_template: \"/a/$k['x']\"\n",
			check: func(t *testing.T, c *fbConfig) {
				if c.Service["http_port"] != "2020" || c.Service["http_server"] != "on" {
					t.Errorf("service = %v", c.Service)
				}
				if _, ok := c.Inputs[0]["processors"]; ok || c.Inputs[0]["name"] != "tail" {
					t.Errorf("input = %v", c.Inputs[0])
				}
				if c.Outputs[0]["log_group_template"] != "/a/$k['x']" {
					t.Errorf("output = %v", c.Outputs[0])
				}
				if len(c.Plugins) != 1 || c.Plugins[0] != "/p/a.so" {
					t.Errorf("plugins = %v", c.Plugins)
				}
			},
		},
		{name: "not a mapping", src: "- a\n", wantErr: "top level must be a map"},
		{name: "unknown section", src: "pipelines: {}\n", wantErr: "unknown top-level"},
		{name: "inputs not a list", src: "pipeline:\n  inputs: {}\n", wantErr: "inputs must be a list"},
		{name: "duplicate key", src: "service:\n  flush: 1\n  Flush: 2\n", wantErr: "set twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFBConfig("fluent-bit.yaml", []byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
