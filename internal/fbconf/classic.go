package fbconf

import (
	"strings"
)

// classicFile parses one classic-format file (Fluent Bit's flb_cf_fluentbit rules):
//   - "[NAME]" at column 0 starts a section;
//   - entries are indented, all with the indentation of the file's first indented line (a line
//     indented twice that is part of an indented "[GROUP]" belongs to that group);
//   - an entry is "key value": the key ends at the first space, the value is the rest, trimmed;
//   - lines starting with '#' (after the indentation) are comments;
//   - "@INCLUDE path" (glob allowed) reads another file, "@SET NAME=VALUE" defines a variable.
func (r *reader) classicFile(c *Config, data []byte, file string) error {
	text := string(data)
	text = strings.TrimPrefix(text, "\ufeff")
	var (
		cur     = -1 // index of the current section in c.Sections (pointers would go stale)
		inGroup bool
		indent  string
	)
	errAt := func(line int, msg string) error { return &Error{File: file, Line: line, Msg: msg} }
	for n, line := range strings.Split(text, "\n") {
		lineNo := n + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch line[0] {
		case '#':
			continue
		case '@':
			fields := strings.Fields(line)
			switch strings.ToUpper(fields[0]) {
			case "@INCLUDE":
				if len(fields) < 2 {
					return errAt(lineNo, "@INCLUDE needs a file name")
				}
				path := strings.TrimSpace(line[len(fields[0]):])
				if err := r.include(c, file, lineNo, path, Classic); err != nil {
					return err
				}
				// Entries after an include belong to this file's current section again.
			case "@SET":
				kv := strings.TrimSpace(line[len(fields[0]):])
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return errAt(lineNo, "@SET expects NAME=VALUE")
				}
				r.vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			continue
		case '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return errAt(lineNo, "bad header definition: missing ']'")
			}
			name := strings.ToLower(strings.TrimSpace(line[1:end]))
			if name == "" {
				return errAt(lineNo, "bad header definition: empty section name")
			}
			c.Sections = append(c.Sections, Section{Kind: name, File: file, Line: lineNo})
			cur = len(c.Sections) - 1
			inGroup = false
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			return errAt(lineNo, "entries must be indented under a [SECTION] header")
		}
		if indent == "" {
			i := 0
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			indent = line[:i]
		}
		if !strings.HasPrefix(line, indent) {
			return errAt(lineNo, "invalid indentation level (inconsistent use of tabs and spaces, or less indented than the first entry)")
		}
		body := line[len(indent):]
		group := false
		if body[0] == ' ' || body[0] == '\t' {
			if !strings.HasPrefix(body, indent) || body[len(indent)] == ' ' || body[len(indent)] == '\t' {
				return errAt(lineNo, "invalid indentation level (extra indentation)")
			}
			if !inGroup {
				return errAt(lineNo, "invalid indentation level (extra indentation outside a group)")
			}
			body = body[len(indent):]
			group = true
		}
		if body[0] == '#' {
			continue
		}
		if cur < 0 {
			return errAt(lineNo, "entry outside any [SECTION]")
		}
		if body[0] == '[' {
			if strings.IndexByte(body, ']') < 0 {
				return errAt(lineNo, "expected a valid group name: [..]")
			}
			inGroup = true
			continue
		}
		if !group {
			inGroup = false
		}
		sp := strings.IndexByte(body, ' ')
		if sp < 0 {
			if strings.ContainsRune(body, '\t') {
				return errAt(lineNo, "key and value must be separated by a space (Fluent Bit does not split on tabs)")
			}
			return errAt(lineNo, "undefined value for key "+body)
		}
		key := strings.TrimSpace(body[:sp])
		val := strings.TrimSpace(body[sp+1:])
		if strings.ContainsRune(key, '\t') {
			return errAt(lineNo, "key and value must be separated by a space (Fluent Bit does not split on tabs)")
		}
		if val == "" {
			return errAt(lineNo, "key "+key+" has an empty value")
		}
		if group {
			continue // group content (e.g. multiline parser rules) is not a plugin property
		}
		c.Sections[cur].Props = append(c.Sections[cur].Props, Property{Key: key, Raw: val, File: file, Line: lineNo})
	}
	return nil
}
