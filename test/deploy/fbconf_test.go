package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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

// parseFBConfig reads a config by its extension: .yaml/.yml is YAML, anything else classic.
func parseFBConfig(name string, data []byte) (*fbConfig, error) {
	switch path.Ext(name) {
	case ".yaml", ".yml":
		return parseYAMLConfig(data)
	default:
		return parseClassicConfig(data)
	}
}

// parseClassicConfig reads Fluent Bit's classic format: [SECTION] headers, then "Key Value"
// lines; # starts a comment line. @INCLUDE and @SET are refused: the shipped configs are single
// files, and a check that silently skipped an include would check nothing.
func parseClassicConfig(data []byte) (*fbConfig, error) {
	c := &fbConfig{Service: map[string]string{}}
	var cur map[string]string
	var section string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "@"):
			return nil, fmt.Errorf("line %d: %q: includes and variables are not supported here", n, line)
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", n, line)
			}
			section = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			cur = map[string]string{}
			switch section {
			case "service":
				cur = c.Service
			case "input":
				c.Inputs = append(c.Inputs, cur)
			case "filter":
				c.Filters = append(c.Filters, cur)
			case "output":
				c.Outputs = append(c.Outputs, cur)
			case "plugins", "parser", "multiline_parser":
			default:
				return nil, fmt.Errorf("line %d: unknown section [%s]", n, section)
			}
		default:
			if cur == nil {
				return nil, fmt.Errorf("line %d: %q outside a section", n, line)
			}
			sp := strings.IndexAny(line, " \t")
			if sp < 0 {
				return nil, fmt.Errorf("line %d: %q has no value", n, line)
			}
			key, value := strings.ToLower(line[:sp]), strings.TrimSpace(line[sp+1:])
			if section == "plugins" && key == "path" {
				c.Plugins = append(c.Plugins, value)
				continue
			}
			if _, dup := cur[key]; dup && section != "parser" && section != "multiline_parser" {
				return nil, fmt.Errorf("line %d: key %q set twice in [%s]", n, key, section)
			}
			cur[key] = value
		}
	}
	return c, sc.Err()
}

// parseYAMLConfig reads Fluent Bit's YAML format: service, pipeline.{inputs,filters,outputs},
// plugins. Scalar values are kept as their source text (on stays "on", 5 stays "5").
func parseYAMLConfig(data []byte) (*fbConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the config is not a YAML mapping")
	}
	c := &fbConfig{Service: map[string]string{}}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i].Value, top.Content[i+1]
		switch key {
		case "service":
			m, err := yamlProps(val)
			if err != nil {
				return nil, fmt.Errorf("service: %w", err)
			}
			c.Service = m
		case "pipeline":
			for j := 0; j+1 < len(val.Content); j += 2 {
				kind, list := val.Content[j].Value, val.Content[j+1]
				if list.Kind != yaml.SequenceNode {
					return nil, fmt.Errorf("pipeline.%s is not a list", kind)
				}
				for _, item := range list.Content {
					m, err := yamlProps(item)
					if err != nil {
						return nil, fmt.Errorf("pipeline.%s: %w", kind, err)
					}
					switch kind {
					case "inputs":
						c.Inputs = append(c.Inputs, m)
					case "filters":
						c.Filters = append(c.Filters, m)
					case "outputs":
						c.Outputs = append(c.Outputs, m)
					default:
						return nil, fmt.Errorf("unknown pipeline section %q", kind)
					}
				}
			}
		case "plugins":
			if val.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("plugins is not a list")
			}
			for _, p := range val.Content {
				c.Plugins = append(c.Plugins, p.Value)
			}
		case "parsers", "multiline_parsers", "env", "includes", "customs":
		default:
			return nil, fmt.Errorf("unknown top-level section %q", key)
		}
	}
	return c, nil
}

func yamlProps(n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := strings.ToLower(n.Content[i].Value)
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("line %d: key %q set twice", n.Content[i].Line, k)
		}
		v := n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			m[k] = "<complex>"
			continue
		}
		m[k] = v.Value
	}
	return m, nil
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
			src: "# top\n[SERVICE]\n    HTTP_Port  2020\n    # inside\n\tGrace\t10\n[INPUT]\n    Name tail\n    multiline.parser docker, cri\n" +
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
		{name: "key outside a section", src: "Flush 1\n", wantErr: "outside a section"},
		{name: "include refused", src: "@INCLUDE other.conf\n", wantErr: "includes"},
		{name: "key without value", src: "[SERVICE]\n    Flush\n", wantErr: "no value"},
		{name: "duplicate key", src: "[OUTPUT]\n    Name a\n    name b\n", wantErr: "set twice"},
		{name: "unknown section", src: "[OUTPUTS]\n    Name a\n", wantErr: "unknown section"},
		{name: "bad header", src: "[SERVICE\n", wantErr: "bad section header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseClassicConfig([]byte(tt.src))
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
				if c.Inputs[0]["processors"] != "<complex>" {
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
		{name: "not a mapping", src: "- a\n", wantErr: "not a YAML mapping"},
		{name: "unknown section", src: "pipelines: {}\n", wantErr: "unknown top-level"},
		{name: "inputs not a list", src: "pipeline:\n  inputs: {}\n", wantErr: "not a list"},
		{name: "duplicate key", src: "service:\n  flush: 1\n  Flush: 2\n", wantErr: "set twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseYAMLConfig([]byte(tt.src))
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
