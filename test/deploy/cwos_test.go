package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	samplesFile = "docker/samples/k8s-records.jsonl"
	// sampleTag is what tail + the kubernetes filter tag a container's lines with.
	sampleTag = "application.var.log.containers.iam-dev-7c9d8b6f5-x2x9k_aws-awssdk_iam-dev-4f2d9c1b7a6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c.log"
)

// sampleRecords reads the bundled sample records (what the kubernetes filter hands the output).
func sampleRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(readRepo(t, samplesFile)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", samplesFile, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// names is what the shipped config must produce for one record: the seed's naming, computed
// here independently of the plugin's code.
type names struct {
	group, stream, index string
	fallback             bool
}

// lambdaIndex is the index the CloudWatch -> OpenSearch Lambda wrote (the seed's JavaScript):
// 'cwl' + group lowercased with '/' and '.' turned into '-' + '-' + YYYY.MM.DD (UTC).
func lambdaIndex(group string, at time.Time) string {
	g := strings.ToLower(group)
	g = strings.Join(strings.Split(g, "/"), "-")
	g = strings.Join(strings.Split(g, "."), "-")
	at = at.UTC()
	return fmt.Sprintf("cwl%s-%d.%02d.%02d", g, at.Year(), int(at.Month()), at.Day())
}

func expectedNames(rec map[string]any, env map[string]string, tag string, at time.Time) names {
	n := names{group: "/aws/containerinsights/" + env["CLUSTER_NAME"] + "/application", fallback: true}
	if k, ok := rec["kubernetes"].(map[string]any); ok {
		ns, _ := k["namespace_name"].(string)
		c, _ := k["container_name"].(string)
		if ns != "" && c != "" {
			n.group, n.fallback = "/aws/containerinsights/"+env["CLUSTER_NAME"]+"."+ns+"."+c, false
		}
	}
	n.stream = env["HOST_NAME"] + "-" + tag
	n.index = lambdaIndex(n.group, at)
	return n
}

func TestLambdaIndexIsTheSeeds(t *testing.T) {
	// The seed's example: this group, a record on 2023-02-22 UTC.
	got := lambdaIndex("/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev", time.Date(2023, 2, 22, 23, 59, 0, 0, time.UTC))
	if want := "cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if got := lambdaIndex("/A/B", time.Date(2024, 1, 2, 0, 0, 0, 0, time.FixedZone("x", 3600))); got != "cwl-a-b-2024.01.01" {
		t.Fatalf("UTC date and lowercasing: got %s", got)
	}
}

// k8sConfigs writes the configs the overlay's ConfigMap carries, as the pod sees them.
func k8sConfigs(t *testing.T) []string {
	t.Helper()
	d, err := parseDeployment(kustomize(t, "k8s/overlays/example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for _, cm := range d.configMaps {
		for k, v := range cm.Data {
			if strings.HasPrefix(k, "fluent-bit.") {
				f := filepath.Join(dir, k)
				if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
		}
	}
	if len(files) != 2 {
		t.Fatalf("the overlay's ConfigMaps carry %d Fluent Bit configs, want 2", len(files))
	}
	return files
}

var (
	warningLine = regexp.MustCompile(`(?m)^warning: .*$`)
	errorLine   = regexp.MustCompile(`(?m)^error: .*$`)
)

func cwosCheck(t *testing.T, file string, env map[string]string) result {
	t.Helper()
	r, err := run(cmdSpec{name: cwos(t), args: []string{"check", "--config", file}, env: envList(env), timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCwosCheckShippedConfigs: every shipped config passes `cwos check` without a warning.
func TestCwosCheckShippedConfigs(t *testing.T) {
	type tc struct {
		file string
		env  map[string]string
	}
	tests := []tc{
		{repoPath(t, classicConf), sampleEnv},
		{repoPath(t, yamlConf), sampleEnv},
		{repoPath(t, demoConf), demoEnv},
	}
	for _, f := range k8sConfigs(t) {
		tests = append(tests, tc{f, sampleEnv})
	}
	for _, tt := range tests {
		t.Run(filepath.Base(filepath.Dir(tt.file))+"/"+filepath.Base(tt.file), func(t *testing.T) {
			r := cwosCheck(t, tt.file, tt.env)
			if r.code != 0 {
				t.Fatalf("cwos check failed: %s", r)
			}
			if w := warningLine.FindAllString(r.stdout, -1); len(w) > 0 {
				t.Errorf("cwos check warns:\n%s", strings.Join(w, "\n"))
			}
			if e := errorLine.FindAllString(r.stdout, -1); len(e) > 0 {
				t.Errorf("cwos check reports errors with exit 0:\n%s", strings.Join(e, "\n"))
			}
		})
	}
}

// TestCwosCheckCatchesMistakes: the same check reports a shipped config with the mistakes it
// guards against, so its silence above means something.
func TestCwosCheckCatchesMistakes(t *testing.T) {
	src := string(readRepo(t, yamlConf))
	bad := regexp.MustCompile(`(?m)^\s+(workers|retry_limit): .*\n`).ReplaceAllString(src, "")
	bad = strings.Replace(bad, "      exit_grace: 5s\n", "      exit_grace: 5s\n      log_grup_name: x\n", 1)
	if strings.Contains(bad, "workers:") || !strings.Contains(bad, "log_grup_name") {
		t.Fatal("the mutation did not apply")
	}
	f := filepath.Join(t.TempDir(), "fluent-bit.yaml")
	if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cwosCheck(t, f, sampleEnv)
	warns := strings.ToLower(strings.Join(warningLine.FindAllString(r.stdout, -1), "\n"))
	for _, want := range []string{"workers", "retry_limit", "log_grup_name"} {
		if !strings.Contains(warns, want) {
			t.Errorf("no warning about %s: %s", want, r)
		}
	}

	// Without the endpoint in the environment the config is invalid, and check says so.
	env := map[string]string{}
	for k, v := range sampleEnv {
		if k != "OPENSEARCH_ENDPOINT" {
			env[k] = v
		}
	}
	// An empty value overrides one the test process may have inherited.
	env["OPENSEARCH_ENDPOINT"] = ""
	r = cwosCheck(t, repoPath(t, yamlConf), env)
	if r.code == 0 || !strings.Contains(r.stdout, "opensearch_endpoint") {
		t.Errorf("cwos check accepted the config without an OpenSearch endpoint: %s", r)
	}
}

// renderLine is one line of `cwos render`.
type renderLine struct {
	LogGroup  string   `json:"log_group"`
	LogStream string   `json:"log_stream"`
	Index     string   `json:"index"`
	Fallback  []string `json:"fallback"`
}

// TestCwosRenderGivesTheSeedsNames: the shipped configs name groups, streams and indices as the
// seed's cloudwatch_logs output and Lambda did, and fall back for records without metadata.
func TestCwosRenderGivesTheSeedsNames(t *testing.T) {
	records := sampleRecords(t)
	times := []time.Time{
		time.Date(2023, 2, 22, 1, 0, 0, 0, time.UTC),
		time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for _, conf := range []string{classicConf, yamlConf} {
		for _, at := range times {
			t.Run(conf+"@"+at.Format("2006-01-02"), func(t *testing.T) {
				r, err := run(cmdSpec{
					name: cwos(t),
					args: []string{"render", "--config", repoPath(t, conf), "--records", repoPath(t, samplesFile),
						"--tag", sampleTag, "--time", at.Format(time.RFC3339)},
					env:     envList(sampleEnv),
					timeout: time.Minute,
				})
				if err != nil {
					t.Fatal(err)
				}
				if r.code != 0 {
					t.Fatalf("cwos render failed: %s", r)
				}
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				if len(lines) != len(records) {
					t.Fatalf("%d lines for %d records:\n%s", len(lines), len(records), r.stdout)
				}
				for i, l := range lines {
					var got renderLine
					if err := json.Unmarshal([]byte(l), &got); err != nil {
						t.Fatalf("line %d: %v: %s", i+1, err, l)
					}
					want := expectedNames(records[i], sampleEnv, sampleTag, at)
					if got.LogGroup != want.group || got.LogStream != want.stream || got.Index != want.index {
						t.Errorf("record %d:\n got  %s | %s | %s\n want %s | %s | %s", i+1,
							got.LogGroup, got.LogStream, got.Index, want.group, want.stream, want.index)
					}
					if (len(got.Fallback) > 0) != want.fallback {
						t.Errorf("record %d: fallback %v, want fallback = %v", i+1, got.Fallback, want.fallback)
					}
				}
				// The seed's own example, literally.
				if at.Equal(times[0]) && !strings.Contains(r.stdout, `"index":"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22"`) {
					t.Errorf("the seed's index name is missing:\n%s", r.stdout)
				}
			})
		}
	}
}

// TestDemoWithoutEngine: `make demo` on a machine without a Docker engine says so and runs the
// dry-run tool on the bundled samples.
func TestDemoWithoutEngine(t *testing.T) {
	bash := tool(t, "bash", "apt-get install bash")
	// A socket path where nothing listens: `docker info` fails whether or not docker is
	// installed, so the test never starts containers.
	noEngine := "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
	r, err := run(cmdSpec{
		name:    bash,
		args:    []string{repoPath(t, "docker/demo.sh")},
		dir:     root(t),
		env:     []string{"DOCKER_HOST=" + noEngine, "CWOS=" + cwos(t)},
		timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.code != 0 {
		t.Fatalf("demo.sh failed: %s", r)
	}
	for _, want := range []string{
		"no Docker engine answers",
		`"log_group":"/aws/containerinsights/bys-dev-eks-main.aws-awssdk.iam-dev"`,
		`"index":"cwl-aws-containerinsights-bys-dev-eks-main-aws-awssdk-iam-dev-2023.02.22"`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo.sh output lacks %q:\n%s", want, r)
		}
	}
	if w := warningLine.FindAllString(r.stdout, -1); len(w) > 0 {
		t.Errorf("the dry run's check warns:\n%s", strings.Join(w, "\n"))
	}
}
