// Package fbconf reads Fluent Bit configuration files, classic (.conf) and YAML (.yaml/.yml),
// the way Fluent Bit does: sections and their key/value properties, @INCLUDE / includes,
// @SET / env variables, and ${VAR} expansion in values. It exists so cwos can check and dry-run
// the exact [OUTPUT] block Fluent Bit would hand to the plugin.
package fbconf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Format of a configuration file.
type Format int

const (
	Classic Format = iota
	YAML
)

func (f Format) String() string {
	if f == YAML {
		return "yaml"
	}
	return "classic"
}

// FormatOf picks the format from the file name, as Fluent Bit does: .yaml and .yml are YAML,
// anything else is classic.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return YAML
	}
	return Classic
}

// Property is one key/value line of a section.
type Property struct {
	Key   string // as written (Fluent Bit compares keys case-insensitively)
	Value string // after ${VAR} expansion, trimmed
	Raw   string // before expansion
	Unset []string
	File  string
	Line  int
}

// Section is one [SECTION] of a classic file or one entry of a YAML list (pipeline.outputs[i]).
type Section struct {
	Kind  string // lowercase: service, input, filter, output, parser, multiline_parser, custom, ...
	File  string
	Line  int
	Props []Property
}

// Get returns the value of key (case-insensitive). When a key is set twice, Fluent Bit's
// property lookup returns the first one, so Get does too.
func (s *Section) Get(key string) (string, bool) {
	for _, p := range s.Props {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// Name returns the section's plugin name (its "name" key).
func (s *Section) Name() string { v, _ := s.Get("name"); return v }

// Config is a whole configuration, includes resolved, in file order.
type Config struct {
	Format   Format
	File     string
	Sections []Section
	Vars     map[string]string // @SET / env: variables defined by the configuration
}

// Find returns the sections of a kind ("output") whose name is plugin (case-insensitive);
// plugin "" matches any.
func (c *Config) Find(kind, plugin string) []*Section {
	var out []*Section
	for i := range c.Sections {
		s := &c.Sections[i]
		if s.Kind == kind && (plugin == "" || strings.EqualFold(s.Name(), plugin)) {
			out = append(out, s)
		}
	}
	return out
}

// Error is a configuration that Fluent Bit would refuse to load.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Options of a read.
type Options struct {
	// LookupEnv reads the process environment; nil = os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Hostname backs ${HOSTNAME} when the environment has none, as Fluent Bit presets it;
	// nil = os.Hostname.
	Hostname func() (string, error)
	// ReadFile reads a file; nil = os.ReadFile. Glob patterns in includes use filepath.Glob.
	ReadFile func(string) ([]byte, error)
}

func (o *Options) defaults() {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
}

// maxFiles bounds includes, as Fluent Bit does.
const maxFiles = 1000

// ReadFile reads the configuration at path in the format its name says.
func ReadFile(path string, o Options) (*Config, error) {
	o.defaults()
	data, err := o.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: errText(err)}
	}
	return Parse(data, path, FormatOf(path), o)
}

// Parse reads a configuration from data; name is used in messages and to resolve relative
// includes (relative to its directory, as Fluent Bit resolves them from the main file).
func Parse(data []byte, name string, f Format, o Options) (*Config, error) {
	o.defaults()
	r := &reader{o: o, root: filepath.Dir(name), vars: map[string]string{}, seen: map[string]bool{}}
	c := &Config{Format: f, File: name}
	var err error
	if f == YAML {
		err = r.yamlFile(c, data, name)
	} else {
		err = r.classicFile(c, data, name)
	}
	if err != nil {
		return nil, err
	}
	r.expandAll(c)
	c.Vars = r.vars
	return c, nil
}

type reader struct {
	o     Options
	root  string
	vars  map[string]string // @SET and YAML env
	seen  map[string]bool
	files int
}

// include reads the files of an @INCLUDE / includes entry (a glob when it has '*').
func (r *reader) include(c *Config, file string, line int, pattern string, f Format) error {
	pattern = r.expand(pattern, nil)
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(r.root, pattern)
	}
	paths := []string{pattern}
	if strings.ContainsAny(pattern, "*?[") {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return &Error{File: file, Line: line, Msg: "include " + pattern + ": " + err.Error()}
		}
		sort.Strings(m)
		paths = m
	}
	for _, p := range paths {
		abs, _ := filepath.Abs(p)
		if r.seen[abs] {
			return &Error{File: file, Line: line, Msg: "file already included: " + p}
		}
		r.seen[abs] = true
		r.files++
		if r.files > maxFiles {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("too many included files (limit %d)", maxFiles)}
		}
		data, err := r.o.ReadFile(p)
		if err != nil {
			return &Error{File: file, Line: line, Msg: "include: " + errText(err)}
		}
		if f == YAML {
			err = r.yamlFile(c, data, p)
		} else {
			err = r.classicFile(c, data, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// expandAll expands ${VAR} in every value once every variable is known (Fluent Bit applies
// @SET / env before it sets any property, wherever they appear).
func (r *reader) expandAll(c *Config) {
	for i := range c.Sections {
		for j := range c.Sections[i].Props {
			p := &c.Sections[i].Props[j]
			p.Value = strings.TrimSpace(r.expand(p.Raw, &p.Unset))
		}
	}
}

// expand replaces ${NAME} with the variable from @SET / env, else the environment, else
// (HOSTNAME only) the host name; an unset or empty variable expands to nothing and is
// recorded in unset. Text without a closing '}' is kept as is.
func (r *reader) expand(v string, unset *[]string) string {
	if !strings.Contains(v, "${") {
		return v
	}
	var b strings.Builder
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i+2:], '}')
		if j < 0 {
			break
		}
		name := v[i+2 : i+2+j]
		b.WriteString(v[:i])
		val, ok := r.lookup(name)
		if ok {
			b.WriteString(val)
		} else if unset != nil && !contains(*unset, name) {
			*unset = append(*unset, name)
		}
		v = v[i+2+j+1:]
	}
	b.WriteString(v)
	return b.String()
}

func (r *reader) lookup(name string) (string, bool) {
	if v, ok := r.vars[name]; ok {
		return v, true
	}
	if v, ok := r.o.LookupEnv(name); ok && v != "" {
		return v, true
	}
	if name == "HOSTNAME" {
		if h, err := r.o.Hostname(); err == nil && h != "" {
			return h, true
		}
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Op + " " + pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}
