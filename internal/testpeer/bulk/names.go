package bulk

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidIndexName checks name by OpenSearch's rules for index names
// (MetadataCreateIndexService.validateIndexOrAliasName), written here from the documentation and
// not shared with the plugin: lowercase only; none of \ / * ? " < > | , # : or a space; not
// starting with -, _ or +; not "." or ".."; at most 255 bytes; not empty. It returns nil or an
// error worded like OpenSearch's invalid_index_name_exception reason.
func ValidIndexName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("Invalid index name [%s], must not be empty", name)
	case name != strings.ToLower(name):
		return fmt.Errorf("Invalid index name [%s], must be lowercase", name)
	case name == "." || name == "..":
		return fmt.Errorf("Invalid index name [%s], must not be '.' or '..'", name)
	case name[0] == '-' || name[0] == '_' || name[0] == '+':
		return fmt.Errorf("Invalid index name [%s], must not start with '_', '-', or '+'", name)
	case len(name) > 255:
		return fmt.Errorf("Invalid index name [%s], index name is too long, (%d > 255)", name, len(name))
	case !utf8.ValidString(name):
		return fmt.Errorf("Invalid index name [%s], must be valid UTF-8", name)
	}
	if i := strings.IndexAny(name, "\\/*?\"<>| ,#"); i >= 0 {
		return fmt.Errorf("Invalid index name [%s], must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #]", name)
	}
	if strings.IndexByte(name, ':') >= 0 {
		return fmt.Errorf("Invalid index name [%s], must not contain ':'", name)
	}
	return nil
}
