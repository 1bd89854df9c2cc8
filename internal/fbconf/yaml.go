package fbconf

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlSections maps the list keys of a YAML config to the section kind they hold.
var yamlSections = map[string]string{
	"inputs":            "input",
	"filters":           "filter",
	"outputs":           "output",
	"customs":           "custom",
	"parsers":           "parser",
	"multiline_parsers": "multiline_parser",
}

// yamlFile parses one YAML file: env (variables), includes, service, pipeline.{inputs, filters,
// outputs}, customs, parsers, multiline_parsers, plugins. In a plugin entry a scalar value is one
// property and a list of scalars is the key repeated; nested maps (processors) are not plugin
// properties and are skipped.
func (r *reader) yamlFile(c *Config, data []byte, file string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return &Error{File: file, Line: root.Line, Msg: "the top level must be a map (env, service, pipeline, ...)"}
	}
	errAt := func(n *yaml.Node, msg string) error { return &Error{File: file, Line: n.Line, Msg: msg} }

	// env first: its variables apply to the whole file.
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if strings.ToLower(k.Value) != "env" {
			continue
		}
		if v.Kind != yaml.MappingNode {
			return errAt(v, "env must be a map of NAME: value")
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			if v.Content[j+1].Kind != yaml.ScalarNode {
				return errAt(v.Content[j+1], "env "+v.Content[j].Value+": expected a single value")
			}
			r.vars[v.Content[j].Value] = v.Content[j+1].Value
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch key := strings.ToLower(k.Value); key {
		case "env":
		case "includes":
			if v.Kind != yaml.SequenceNode {
				return errAt(v, "includes must be a list of files")
			}
			for _, f := range v.Content {
				if f.Kind != yaml.ScalarNode {
					return errAt(f, "includes: expected a file name")
				}
				if err := r.include(c, file, f.Line, f.Value, YAML); err != nil {
					return err
				}
			}
		case "service":
			if v.Kind != yaml.MappingNode {
				return errAt(v, "service must be a map")
			}
			if err := r.yamlSection(c, file, "service", k, v); err != nil {
				return err
			}
		case "pipeline":
			if v.Kind != yaml.MappingNode {
				return errAt(v, "pipeline must be a map of inputs, filters and outputs")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				pk, pv := v.Content[j], v.Content[j+1]
				kind, ok := yamlSections[strings.ToLower(pk.Value)]
				if !ok || kind == "custom" || kind == "parser" || kind == "multiline_parser" {
					return errAt(pk, "unknown pipeline section "+pk.Value+" (expected inputs, filters or outputs)")
				}
				if err := r.yamlList(c, file, kind, pv); err != nil {
					return err
				}
			}
		case "plugins":
			// The classic [PLUGINS] section's shape: one "path" property per .so.
			if v.Kind != yaml.SequenceNode {
				return errAt(v, "plugins must be a list of .so paths")
			}
			s := Section{Kind: "plugins", File: file, Line: k.Line}
			for _, f := range v.Content {
				if f.Kind != yaml.ScalarNode {
					return errAt(f, "plugins: expected a .so path")
				}
				s.Props = append(s.Props, Property{Key: "path", Raw: f.Value, File: file, Line: f.Line})
			}
			c.Sections = append(c.Sections, s)
		default:
			if kind, ok := yamlSections[key]; ok {
				if err := r.yamlList(c, file, kind, v); err != nil {
					return err
				}
			}
			// Other top-level keys (upstream_servers, ...) hold nothing for outputs.
		}
	}
	return nil
}

func (r *reader) yamlList(c *Config, file, kind string, list *yaml.Node) error {
	if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		return &Error{File: file, Line: list.Line, Msg: kind + "s must be a list of plugin entries (- name: ...)"}
	}
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			return &Error{File: file, Line: item.Line, Msg: kind + " entry must be a map of key: value"}
		}
		if err := r.yamlSection(c, file, kind, item, item); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) yamlSection(c *Config, file, kind string, at, m *yaml.Node) error {
	s := Section{Kind: kind, File: file, Line: at.Line}
	for j := 0; j+1 < len(m.Content); j += 2 {
		k, v := m.Content[j], m.Content[j+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch v.Kind {
		case yaml.ScalarNode:
			s.Props = append(s.Props, Property{Key: k.Value, Raw: v.Value, File: file, Line: k.Line})
		case yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind == yaml.ScalarNode {
					s.Props = append(s.Props, Property{Key: k.Value, Raw: e.Value, File: file, Line: e.Line})
				}
			}
		}
	}
	c.Sections = append(c.Sections, s)
	return nil
}
