package deploy_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/cloudwatch"
	"github.com/cwos/cloudwatch-opensearch/internal/sink/opensearch"
)

// TestReadmeKeyTable: every key the plugin reads is in the README's key table with the default
// the code applies, and the table lists no key the plugin does not read.
func TestReadmeKeyTable(t *testing.T) {
	readme := string(readRepo(t, "README.md"))
	start := strings.Index(readme, "## Configuration keys")
	if start < 0 {
		t.Fatal("README has no Configuration keys section")
	}
	section := readme[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	row := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	for _, k := range config.Keys() {
		def, ok := documented[k]
		if !ok {
			t.Errorf("key %s is not in the README's table", k)
			continue
		}
		if want := config.Default(k); want != "" && !strings.Contains(def, "`"+want+"`") {
			t.Errorf("key %s: README default %q does not show the code's default %q", k, def, want)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("README documents key %s, which the plugin does not read", k)
	}
}

// TestReadmePermissions: the permissions the code names in its hints are the ones the README
// tells users to grant.
func TestReadmePermissions(t *testing.T) {
	readme := string(readRepo(t, "README.md"))
	want := append([]string(nil), cloudwatch.IAMActions...)
	want = append(want, opensearch.ClusterPermissions...)
	want = append(want, opensearch.IndexPermissions...)
	want = append(want, opensearch.IAMActionsES...)
	want = append(want, opensearch.IAMActionsAOSS...)
	want = append(want, opensearch.AOSSDataPermissions...)
	for _, p := range want {
		if !strings.Contains(readme, "`"+p+"`") {
			t.Errorf("README does not name permission %s", p)
		}
	}
}
