package deploy_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads a compose file the way `docker compose` does (compose-go: the Compose
// schema, interpolation, path resolution, consistency checks), offline.
func loadCompose(t *testing.T, file string) (*types.Project, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
		cli.WithEnv([]string{}),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// TestComposeFile validates docker/compose.yaml against the Compose schema and checks the demo
// stack is wired as docker/demo/fluent-bit.yaml expects.
func TestComposeFile(t *testing.T) {
	file := repoPath(t, "docker/compose.yaml")
	p, err := loadCompose(t, file)
	if err != nil {
		t.Fatalf("docker/compose.yaml does not load: %v", err)
	}

	want := []string{"dashboards", "fluent-bit", "loggen", "moto", "opensearch"}
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}

	for name, s := range p.Services {
		// Images are pinned; the plugin image is built here.
		img := s.Image
		if i := strings.LastIndex(img, ":"); i < 0 || strings.Contains(img[i:], "/") || img[i+1:] == "latest" {
			t.Errorf("%s: image %q has no pinned tag", name, img)
		}
		// Nothing is reachable from the network: OpenSearch runs without its security plugin.
		for _, port := range s.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s is published on %q, want 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
		// depends_on service_healthy needs a health check on the other side.
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy {
				if hc := p.Services[dep].HealthCheck; hc == nil || len(hc.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
				}
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: bind mount source: %v", name, err)
				}
			}
		}
	}

	fb := p.Services["fluent-bit"]
	if fb.Build == nil || filepath.Clean(fb.Build.Context) != root(t) || fb.Build.Dockerfile != "docker/Dockerfile" {
		t.Errorf("fluent-bit build = %+v, want context the repository root and docker/Dockerfile", fb.Build)
	}
	// The image is distroless: the health check must be exec form, running the image's binary.
	d := loadDockerfile(t)
	files := d.stages[len(d.stages)-1].imageFiles()
	if hc := fb.HealthCheck; hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Errorf("fluent-bit healthcheck %v: want [CMD, binary, ...] (no shell in the image)", fb.HealthCheck)
	} else if _, ok := files[hc.Test[1]]; !ok {
		t.Errorf("fluent-bit healthcheck runs %s, which the image does not have", hc.Test[1])
	}
	if !fb.ReadOnly || !slices.Contains(fb.CapDrop, "ALL") {
		t.Errorf("fluent-bit: read_only = %v, cap_drop = %v; want a read-only root and no capabilities", fb.ReadOnly, fb.CapDrop)
	}

	// The config compose runs is the demo config, bind-mounted where the command points.
	if len(fb.Command) != 2 || fb.Command[0] != "-c" {
		t.Fatalf("fluent-bit command %v, want [-c CONFIG]", fb.Command)
	}
	var mounted string
	for _, v := range fb.Volumes {
		if v.Target == fb.Command[1] {
			mounted = v.Source
		}
	}
	if mounted != repoPath(t, demoConf) {
		t.Fatalf("fluent-bit runs %s, mounted from %q; want %s", fb.Command[1], mounted, demoConf)
	}

	// The demo config's endpoints are the emulator and OpenSearch services, on their ports.
	out, err := loadConfig(t, demoConf).output()
	if err != nil {
		t.Fatal(err)
	}
	for key, svc := range map[string]string{"cloudwatch_endpoint": "moto", "opensearch_endpoint": "opensearch"} {
		u, err := url.Parse(out[key])
		if err != nil || u.Hostname() != svc {
			t.Errorf("%s = %q: want a URL on the %s service", key, out[key], svc)
			continue
		}
		port, _ := strconv.Atoi(u.Port())
		if !slices.ContainsFunc(p.Services[svc].Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == port }) {
			t.Errorf("%s port %d is not a port of the %s service", key, port, svc)
		}
	}
	// Every ${VAR} of the demo config is set on the container.
	for k, v := range out {
		for _, m := range envRef.FindAllStringSubmatch(v, -1) {
			if _, ok := fb.Environment[m[1]]; !ok {
				t.Errorf("%s uses ${%s}, which compose does not set", k, m[1])
			}
		}
	}
	for k, v := range demoEnv {
		if got := fb.Environment[k]; got == nil || *got != v {
			t.Errorf("compose sets %s=%v; the tests assume %q", k, got, v)
		}
	}
}

// TestComposeValidationIsOn: the loader rejects what the Compose schema rejects, so the test
// above proves something.
func TestComposeValidationIsOn(t *testing.T) {
	tests := []struct{ name, src string }{
		{"unknown service key", "services:\n  a:\n    image: busybox:1.37.0\n    imagee: x\n"},
		{"ports not a list", "services:\n  a:\n    image: busybox:1.37.0\n    ports: 80\n"},
		{"depends on nothing", "services:\n  a:\n    image: busybox:1.37.0\n    depends_on: [b]\n"},
		{"bad healthcheck interval", "services:\n  a:\n    image: busybox:1.37.0\n    healthcheck:\n      test: [CMD, x]\n      interval: soon\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "compose.yaml")
			if err := os.WriteFile(f, []byte("name: x\n"+tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadCompose(t, f)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Logf("rejected: %v", err)
		})
	}
}
