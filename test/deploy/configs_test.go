package deploy_test

import (
	"bytes"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cwos/cloudwatch-opensearch/internal/config"
)

// The shipped Fluent Bit configs (repository paths).
const (
	classicConf = "docker/conf/fluent-bit.conf"
	yamlConf    = "docker/conf/fluent-bit.yaml"
	demoConf    = "docker/demo/fluent-bit.yaml"
)

// sampleEnv is what the DaemonSet would put in the environment for the seed's cluster.
var sampleEnv = map[string]string{
	"CLUSTER_NAME":        "bys-dev-eks-main",
	"AWS_REGION":          "ap-northeast-2",
	"HOST_NAME":           "ip-10-0-1-23.ap-northeast-2.compute.internal",
	"OPENSEARCH_ENDPOINT": "https://search-bys-dev-opensearch-eks-abcdefghijklmnop.ap-northeast-2.es.amazonaws.com",
}

// demoEnv is what docker/compose.yaml gives the demo's Fluent Bit.
var demoEnv = map[string]string{"CLUSTER_NAME": "demo", "AWS_REGION": "us-east-1", "HOST_NAME": "demo-node"}

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} the way Fluent Bit does; $name without braces (record accessor,
// $LOG_GROUP) is left alone. Unknown variables are reported.
func expandEnv(v string, env map[string]string) (string, []string) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(v, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		val, ok := env[name]
		if !ok {
			missing = append(missing, name)
		}
		return val
	})
	return out, missing
}

// fluentBitOutputKeys are [OUTPUT] keys Fluent Bit consumes itself and never passes to a plugin.
var fluentBitOutputKeys = []string{
	"name", "match", "match_regex", "alias", "workers", "retry_limit", "storage.total_limit_size",
	"log_level", "log_suppress_interval",
}

func loadConfig(t *testing.T, rel string) *fbConfig {
	t.Helper()
	c, err := parseFBConfig(rel, readRepo(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return c
}

// TestClassicAndYAMLAgree: the two formats of the shipped config are one pipeline.
func TestClassicAndYAMLAgree(t *testing.T) {
	classic, yml := loadConfig(t, classicConf), loadConfig(t, yamlConf)

	cmp := func(where string, a, b map[string]string, skip ...string) {
		t.Helper()
		keys := map[string]bool{}
		for k := range a {
			keys[k] = true
		}
		for k := range b {
			keys[k] = true
		}
		for k := range keys {
			if slices.Contains(skip, k) {
				continue
			}
			av, aok := a[k]
			bv, bok := b[k]
			switch {
			case !aok:
				t.Errorf("%s: %q only in %s (= %q)", where, k, yamlConf, bv)
			case !bok:
				t.Errorf("%s: %q only in %s (= %q)", where, k, classicConf, av)
			case canon(av) != canon(bv):
				t.Errorf("%s: %q is %q in %s but %q in %s", where, k, av, classicConf, bv, yamlConf)
			}
		}
	}
	cmp("service", classic.Service, yml.Service, "plugins_file")
	for _, s := range []struct {
		name string
		a, b []map[string]string
	}{{"input", classic.Inputs, yml.Inputs}, {"filter", classic.Filters, yml.Filters}, {"output", classic.Outputs, yml.Outputs}} {
		if len(s.a) != len(s.b) {
			t.Errorf("%d %s sections in %s, %d in %s", len(s.a), s.name, classicConf, len(s.b), yamlConf)
			continue
		}
		for i := range s.a {
			cmp(s.name+" "+strconv.Itoa(i), s.a[i], s.b[i])
		}
	}

	// Each format loads the plugin through its own plugins file; both name the same .so.
	for _, c := range []struct {
		conf *fbConfig
		want string
	}{{classic, "/fluent-bit/etc/plugins.conf"}, {yml, "/fluent-bit/etc/plugins.yaml"}} {
		if got := c.conf.Service["plugins_file"]; got != c.want {
			t.Errorf("plugins_file = %q, want %q", got, c.want)
		}
	}
	if a, b := pluginsFileSO(t, "docker/conf/plugins.conf"), pluginsFileSO(t, "docker/conf/plugins.yaml"); a != b {
		t.Errorf("plugins.conf loads %q but plugins.yaml loads %q", a, b)
	}
}

// pluginsFileSO returns the one .so a plugins file loads.
func pluginsFileSO(t *testing.T, rel string) string {
	t.Helper()
	c := loadConfig(t, rel)
	if len(c.Plugins) != 1 {
		t.Fatalf("%s lists %d plugins, want 1", rel, len(c.Plugins))
	}
	return c.Plugins[0]
}

// TestConfigMapCopiesAreTheImageConfigs: k8s/base's ConfigMap files are the image's configs
// (kustomize cannot read files outside the base, so they are copies).
func TestConfigMapCopiesAreTheImageConfigs(t *testing.T) {
	for _, name := range []string{"fluent-bit.conf", "fluent-bit.yaml"} {
		img, k8s := readRepo(t, "docker/conf/"+name), readRepo(t, "k8s/base/"+name)
		if !bytes.Equal(img, k8s) {
			t.Errorf("k8s/base/%s differs from docker/conf/%s: run cp docker/conf/%s k8s/base/%s", name, name, name, name)
		}
	}
}

// TestShippedConfigs checks each shipped config against what SPEC.md and the brief promise, and
// parses its plugin keys with the plugin's own config.Parse.
func TestShippedConfigs(t *testing.T) {
	tests := []struct {
		rel        string
		env        map[string]string
		kubernetes bool // reads /var/log/containers through the kubernetes filter
	}{
		{classicConf, sampleEnv, true},
		{yamlConf, sampleEnv, true},
		{demoConf, demoEnv, false},
	}
	for _, tt := range tests {
		t.Run(path.Base(path.Dir(tt.rel))+"/"+path.Base(tt.rel), func(t *testing.T) {
			c := loadConfig(t, tt.rel)
			out, err := c.output()
			if err != nil {
				t.Fatal(err)
			}

			// Fluent Bit's own keys: concurrency and no silent drops.
			if w, err := strconv.Atoi(out["workers"]); err != nil || w < 1 {
				t.Errorf("workers = %q: want >= 1 (0 flushes on the engine thread)", out["workers"])
			}
			if rl := strings.ToLower(out["retry_limit"]); rl != "no_limits" && rl != "false" {
				t.Errorf("retry_limit = %q: want no_limits (the default 1 drops a chunk after one retry)", out["retry_limit"])
			}
			if out["storage.total_limit_size"] == "" {
				t.Error("storage.total_limit_size is not set: the disk buffer has no bound")
			}
			if c.Service["storage.path"] == "" {
				t.Error("service storage.path is not set")
			}
			for _, in := range c.Inputs {
				if in["storage.type"] != "filesystem" {
					t.Errorf("input %s: storage.type = %q, want filesystem", in["name"], in["storage.type"])
				}
			}
			if canon(c.Service["http_server"]) != "on" || canon(c.Service["health_check"]) != "on" {
				t.Errorf("http_server = %q, health_check = %q: both must be on for the probes", c.Service["http_server"], c.Service["health_check"])
			}

			// Every plugin key is one the plugin knows or one Fluent Bit consumes.
			src := config.MapSource{}
			for k, v := range out {
				if slices.Contains(fluentBitOutputKeys, k) {
					continue
				}
				if !config.Known(k) {
					t.Errorf("[OUTPUT] key %q is not a plugin key (Fluent Bit would ignore it silently)", k)
				}
				ev, missing := expandEnv(v, tt.env)
				if len(missing) > 0 {
					t.Errorf("[OUTPUT] %s uses %v, which the deployment does not set", k, missing)
				}
				src[k] = ev
			}
			// The plugin's own parser accepts it.
			parsed, err := config.Parse(src)
			if err != nil {
				t.Fatalf("config.Parse: %v", err)
			}
			if !parsed.CloudWatch || !parsed.OpenSearch {
				t.Errorf("cloudwatch = %v, opensearch = %v: the shipped config writes to both", parsed.CloudWatch, parsed.OpenSearch)
			}
			if got := parsed.IndexTemplate.Source(); got != config.DefaultIndexTemplate {
				t.Errorf("index_template = %q, want Lambda mode %q", got, config.DefaultIndexTemplate)
			}
			const seedGroup = "/aws/containerinsights/${CLUSTER_NAME}.$kubernetes['namespace_name'].$kubernetes['container_name']"
			if out["log_group_template"] != seedGroup {
				t.Errorf("log_group_template = %q, want the seed's %q", out["log_group_template"], seedGroup)
			}

			// Shutdown order: the plugin finishes within Fluent Bit's grace.
			grace, err := c.graceSeconds()
			if err != nil {
				t.Fatal(err)
			}
			if parsed.ExitGrace.Seconds() >= grace {
				t.Errorf("exit_grace %s is not below Fluent Bit's grace %gs", parsed.ExitGrace, grace)
			}

			// Routing: the filter and the output see what the input tags.
			if len(c.Inputs) != 1 {
				t.Fatalf("%d inputs, want 1", len(c.Inputs))
			}
			in := c.Inputs[0]
			sampleTag := strings.Replace(in["tag"], "*", "var.log.containers.app_ns_c-0.log", 1)
			if !tagMatches(out["match"], sampleTag) {
				t.Errorf("output match %q does not match the input's tags (%q)", out["match"], sampleTag)
			}
			if !tt.kubernetes {
				return
			}
			if in["name"] != "tail" || in["path"] != "/var/log/containers/*.log" {
				t.Errorf("input = %s %s, want tail /var/log/containers/*.log", in["name"], in["path"])
			}
			parsers := strings.Split(strings.ReplaceAll(in["multiline.parser"], " ", ""), ",")
			if !slices.Contains(parsers, "cri") || !slices.Contains(parsers, "docker") {
				t.Errorf("multiline.parser = %q, want docker and cri", in["multiline.parser"])
			}
			var k8s map[string]string
			for _, f := range c.Filters {
				if f["name"] == "kubernetes" {
					k8s = f
				}
			}
			if k8s == nil {
				t.Fatal("no kubernetes filter")
			}
			if !tagMatches(k8s["match"], sampleTag) {
				t.Errorf("kubernetes filter match %q does not match %q", k8s["match"], sampleTag)
			}
			// tail turns the file path into the tag's tail: application.* + var.log.containers.<file>
			wantPrefix := strings.TrimSuffix(in["tag"], "*") + strings.ReplaceAll(strings.TrimPrefix(path.Dir(in["path"]), "/"), "/", ".") + "."
			if k8s["kube_tag_prefix"] != wantPrefix {
				t.Errorf("kube_tag_prefix = %q, want %q (from tag %q and path %q)", k8s["kube_tag_prefix"], wantPrefix, in["tag"], in["path"])
			}
		})
	}
}

// tagMatches is Fluent Bit's Match: * matches any run of characters.
func tagMatches(pattern, tag string) bool {
	ok, _ := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(tag, "/", "\x00"))
	return ok
}
