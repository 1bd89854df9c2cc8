package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// kubeVersion is the Kubernetes version whose schemas kubectl-validate embeds and checks
// against offline (v0.0.4 embeds 1.23 to 1.30; later versions would be fetched, so never used).
const kubeVersion = "1.30"

// The kustomizations a user applies.
var kustomizations = []string{"k8s/base", "k8s/overlays/example"}

// kustomize renders a kustomization with kubectl (or a standalone kustomize).
func kustomize(t *testing.T, rel string) []byte {
	t.Helper()
	dir := repoPath(t, rel)
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		return []byte(mustRun(t, cmdSpec{name: kubectl, args: []string{"kustomize", dir}}).stdout)
	}
	k := tool(t, "kustomize", "go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 (or install kubectl)", filepath.Join(goBin(t), "kustomize"))
	return []byte(mustRun(t, cmdSpec{name: k, args: []string{"build", dir}}).stdout)
}

// --- The objects, as far as the checks read them -------------------------------------------

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
}

type configMap struct {
	Metadata meta              `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type policyRule struct {
	APIGroups []string `yaml:"apiGroups"`
	Resources []string `yaml:"resources"`
	Verbs     []string `yaml:"verbs"`
}

type clusterRole struct {
	Metadata meta         `yaml:"metadata"`
	Rules    []policyRule `yaml:"rules"`
}

type clusterRoleBinding struct {
	Metadata meta `yaml:"metadata"`
	RoleRef  struct {
		Kind, Name string
	} `yaml:"roleRef"`
	Subjects []struct {
		Kind, Name, Namespace string
	} `yaml:"subjects"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		FieldRef        *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env       []envVar `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	SecurityContext *struct {
		RunAsUser                *int64 `yaml:"runAsUser"`
		Privileged               *bool  `yaml:"privileged"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             *struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []volumeMount `yaml:"volumeMounts"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
	} `yaml:"hostPath"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
	} `yaml:"secret"`
	EmptyDir *struct{} `yaml:"emptyDir"`
}

type toleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Effect   string `yaml:"effect"`
}

type daemonSet struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		UpdateStrategy struct {
			Type          string `yaml:"type"`
			RollingUpdate *struct {
				MaxSurge       yaml.Node `yaml:"maxSurge"`
				MaxUnavailable yaml.Node `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"updateStrategy"`
		Template struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				ServiceAccountName            string       `yaml:"serviceAccountName"`
				PriorityClassName             string       `yaml:"priorityClassName"`
				TerminationGracePeriodSeconds *int64       `yaml:"terminationGracePeriodSeconds"`
				Tolerations                   []toleration `yaml:"tolerations"`
				Containers                    []container  `yaml:"containers"`
				Volumes                       []volume     `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// deployment is one kustomize build.
type deployment struct {
	objects      []object
	configMaps   map[string]*configMap // by namespace/name
	serviceAccts map[string]meta       // by namespace/name
	roles        map[string]*clusterRole
	bindings     []*clusterRoleBinding
	priority     map[string]bool // PriorityClass names
	daemonSets   []*daemonSet
}

func nsName(ns, name string) string { return ns + "/" + name }

// parseDeployment decodes a multi-document kustomize output.
func parseDeployment(data []byte) (*deployment, error) {
	d := &deployment{
		configMaps:   map[string]*configMap{},
		serviceAccts: map[string]meta{},
		roles:        map[string]*clusterRole{},
		priority:     map[string]bool{},
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		var o object
		if err := n.Decode(&o); err != nil {
			return nil, err
		}
		d.objects = append(d.objects, o)
		var err error
		switch o.Kind {
		case "ConfigMap":
			cm := &configMap{}
			err = n.Decode(cm)
			d.configMaps[nsName(o.Metadata.Namespace, o.Metadata.Name)] = cm
		case "ServiceAccount":
			d.serviceAccts[nsName(o.Metadata.Namespace, o.Metadata.Name)] = o.Metadata
		case "ClusterRole":
			r := &clusterRole{}
			err = n.Decode(r)
			d.roles[o.Metadata.Name] = r
		case "ClusterRoleBinding":
			b := &clusterRoleBinding{}
			err = n.Decode(b)
			d.bindings = append(d.bindings, b)
		case "PriorityClass":
			d.priority[o.Metadata.Name] = true
		case "DaemonSet":
			ds := &daemonSet{}
			err = n.Decode(ds)
			d.daemonSets = append(d.daemonSets, ds)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Metadata.Name, err)
		}
	}
	return d, nil
}

// --- Cross-checks --------------------------------------------------------------------------

// mebibytes parses a Kubernetes memory quantity or a GOMEMLIMIT value into MiB.
func mebibytes(q string) (float64, error) {
	units := []struct {
		suffix string
		mib    float64
	}{
		{"KiB", 1.0 / 1024}, {"MiB", 1}, {"GiB", 1024}, // GOMEMLIMIT
		{"Ki", 1.0 / 1024}, {"Mi", 1}, {"Gi", 1024}, // Kubernetes
		{"k", 1000.0 / (1 << 20)}, {"M", 1e6 / (1 << 20)}, {"G", 1e9 / (1 << 20)},
		{"B", 1.0 / (1 << 20)},
	}
	for _, u := range units {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			return v * u.mib, err
		}
	}
	v, err := strconv.ParseFloat(q, 64)
	return v / (1 << 20), err
}

// underMount returns the mount that holds p (the longest mount path that is a prefix).
func underMount(mounts []volumeMount, p string) (volumeMount, bool) {
	var best volumeMount
	found := false
	for _, m := range mounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) >= len(best.MountPath) {
			best, found = m, true
		}
	}
	return best, found
}

// builtinPriorityClasses exist in every cluster.
var builtinPriorityClasses = []string{"system-node-critical", "system-cluster-critical"}

// check cross-checks one rendered deployment: references resolve, the probes ask the port and
// paths the Fluent Bit config serves, the shutdown graces nest, and the pod is as locked down as
// reading host logs allows.
func (d *deployment) check() []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(d.daemonSets) != 1 {
		fail("%d DaemonSets, want 1", len(d.daemonSets))
		return errs
	}
	ds := d.daemonSets[0]
	ns := ds.Metadata.Namespace
	pod := ds.Spec.Template.Spec

	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			fail("selector label %s=%s is not on the pod template", k, v)
		}
	}

	// Service account and its permissions.
	if _, ok := d.serviceAccts[nsName(ns, pod.ServiceAccountName)]; !ok {
		fail("serviceAccountName %q: no such ServiceAccount in namespace %q", pod.ServiceAccountName, ns)
	}
	granted := map[string]bool{}
	for _, b := range d.bindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == pod.ServiceAccountName && s.Namespace == ns {
				r, ok := d.roles[b.RoleRef.Name]
				if b.RoleRef.Kind != "ClusterRole" || !ok {
					fail("ClusterRoleBinding %s refers to missing %s %s", b.Metadata.Name, b.RoleRef.Kind, b.RoleRef.Name)
					continue
				}
				for _, rule := range r.Rules {
					if !slices.Contains(rule.APIGroups, "") {
						continue
					}
					for _, res := range rule.Resources {
						for _, v := range rule.Verbs {
							granted[res+":"+v] = true
						}
					}
				}
			}
		}
	}
	for _, res := range []string{"pods", "namespaces"} {
		for _, v := range []string{"get", "list", "watch"} {
			if !granted[res+":"+v] {
				fail("the service account may not %s %s (the kubernetes filter needs it)", v, res)
			}
		}
	}

	if pc := pod.PriorityClassName; pc == "" {
		fail("no priorityClassName")
	} else if !slices.Contains(builtinPriorityClasses, pc) && !d.priority[pc] {
		fail("priorityClassName %q: no such PriorityClass", pc)
	}
	everyNode := slices.ContainsFunc(pod.Tolerations, func(t toleration) bool {
		return t.Operator == "Exists" && t.Key == "" && t.Effect == ""
	})
	if !everyNode {
		fail("no toleration {operator: Exists}: tainted nodes would get no log agent")
	}

	us := ds.Spec.UpdateStrategy
	if us.Type != "RollingUpdate" || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable.Kind == 0 {
		fail("updateStrategy must be RollingUpdate with maxUnavailable set")
	} else if ms := us.RollingUpdate.MaxSurge; ms.Kind == 0 || (ms.Value != "0" && ms.Value != "0%") {
		fail("maxSurge must be 0: two pods on one node would share the tail database and chunk buffer")
	}

	volumes := map[string]volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			if _, ok := d.configMaps[nsName(ns, v.ConfigMap.Name)]; !ok {
				fail("volume %s: no ConfigMap %q in namespace %q", v.Name, v.ConfigMap.Name, ns)
			}
		}
	}
	hostPaths := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.HostPath.Path] = true
		}
	}
	for _, p := range []string{"/var/log", "/var/fluent-bit/state"} {
		if !hostPaths[p] {
			fail("no hostPath volume for %s", p)
		}
	}

	if len(pod.Containers) != 1 {
		fail("%d containers, want 1", len(pod.Containers))
		return errs
	}
	c := pod.Containers[0]
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			fail("volumeMount %s (%s): no volume of that name", m.Name, m.MountPath)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.ConfigMapKeyRef
		cm, ok := d.configMaps[nsName(ns, ref.Name)]
		if !ok {
			fail("env %s: no ConfigMap %q", e.Name, ref.Name)
		} else if _, ok := cm.Data[ref.Key]; !ok {
			fail("env %s: ConfigMap %s has no key %q", e.Name, ref.Name, ref.Key)
		}
	}

	// The Fluent Bit config the container runs: -c PATH, inside a mounted ConfigMap.
	confPath := ""
	for i, a := range c.Args {
		if (a == "-c" || a == "--config") && i+1 < len(c.Args) {
			confPath = c.Args[i+1]
		}
	}
	var conf *fbConfig
	if m, ok := underMount(c.VolumeMounts, confPath); !ok || confPath == "" {
		fail("config %q (args %q) is not under any volumeMount", confPath, c.Args)
	} else if v := volumes[m.Name]; v.ConfigMap == nil {
		fail("config %q is not in a ConfigMap volume", confPath)
	} else if cm := d.configMaps[nsName(ns, v.ConfigMap.Name)]; cm == nil {
		// reported above
	} else if data, ok := cm.Data[path.Base(confPath)]; !ok {
		fail("ConfigMap %s has no key %q for the config %s", cm.Metadata.Name, path.Base(confPath), confPath)
	} else if parsed, err := parseFBConfig(confPath, []byte(data)); err != nil {
		fail("config %s: %v", confPath, err)
	} else {
		conf = parsed
	}

	// Environment the config uses must be set by the container.
	if conf != nil {
		set := map[string]bool{}
		for _, e := range c.Env {
			set[e.Name] = true
		}
		for _, o := range append(append(append([]map[string]string{conf.Service}, conf.Inputs...), conf.Filters...), conf.Outputs...) {
			for k, v := range o {
				for _, m := range envRef.FindAllStringSubmatch(v, -1) {
					if !set[m[1]] {
						fail("config key %s uses ${%s}, which the container does not set", k, m[1])
					}
				}
			}
		}
	}

	// Probes: the config's HTTP port, readiness on health, liveness on something that stays
	// up during a downstream outage.
	portOf := func(p *probe) (int, string, bool) {
		if p == nil || p.HTTPGet == nil {
			return 0, "", false
		}
		if n, err := strconv.Atoi(p.HTTPGet.Port.Value); err == nil {
			return n, p.HTTPGet.Path, true
		}
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.Value {
				return cp.ContainerPort, p.HTTPGet.Path, true
			}
		}
		fail("probe port %q is not a container port name", p.HTTPGet.Port.Value)
		return 0, p.HTTPGet.Path, true
	}
	httpPort := 0
	if conf != nil {
		var err error
		if httpPort, err = conf.httpPort(); err != nil || httpPort == 0 {
			fail("the config's HTTP server is off or its port is bad (%v)", err)
		}
	}
	if port, p, ok := portOf(c.ReadinessProbe); !ok {
		fail("no HTTP readinessProbe")
	} else {
		if p != "/api/v1/health" {
			fail("readinessProbe path %q, want /api/v1/health", p)
		}
		if conf != nil && port != httpPort {
			fail("readinessProbe port %d, but Fluent Bit listens on %d", port, httpPort)
		}
	}
	if port, p, ok := portOf(c.LivenessProbe); !ok {
		fail("no HTTP livenessProbe")
	} else {
		if strings.Contains(p, "/health") {
			fail("livenessProbe path %q fails during a CloudWatch or OpenSearch outage and would restart the pod", p)
		}
		if conf != nil && port != httpPort {
			fail("livenessProbe port %d, but Fluent Bit listens on %d", port, httpPort)
		}
	}

	// Shutdown: plugin exit_grace < Fluent Bit grace < terminationGracePeriodSeconds.
	if conf != nil {
		grace, gerr := conf.graceSeconds()
		exit, eerr := conf.exitGrace()
		switch {
		case gerr != nil || eerr != nil:
			fail("grace settings: %v %v", gerr, eerr)
		case pod.TerminationGracePeriodSeconds == nil:
			fail("terminationGracePeriodSeconds is not set (the default 30s is not checked against the config)")
		case float64(*pod.TerminationGracePeriodSeconds) <= grace:
			fail("terminationGracePeriodSeconds %d is not above Fluent Bit's grace %gs", *pod.TerminationGracePeriodSeconds, grace)
		case exit.Seconds() >= grace:
			fail("the plugin's exit_grace %s is not below Fluent Bit's grace %gs", exit, grace)
		}
	}

	// Files: what Fluent Bit writes is on a writable mount (the root filesystem is read-only),
	// what it tails is mounted.
	if conf != nil {
		for _, p := range conf.writablePaths() {
			if m, ok := underMount(c.VolumeMounts, p); !ok || m.ReadOnly {
				fail("%s is written but is not on a writable volumeMount", p)
			}
		}
		for _, in := range conf.Inputs {
			if p := in["path"]; p != "" {
				if _, ok := underMount(c.VolumeMounts, p); !ok {
					fail("input path %s is not on any volumeMount", p)
				}
			}
		}
	}

	// Resources and the Go memory limit.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			fail("no %s request", r)
		}
	}
	limit, lerr := mebibytes(c.Resources.Limits["memory"])
	if c.Resources.Limits["memory"] == "" || lerr != nil {
		fail("memory limit %q is missing or bad", c.Resources.Limits["memory"])
	}
	if req, err := mebibytes(c.Resources.Requests["memory"]); err == nil && lerr == nil && req > limit {
		fail("memory request %s is above the limit %s", c.Resources.Requests["memory"], c.Resources.Limits["memory"])
	}
	gomem := ""
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			gomem = e.Value
		}
	}
	if g, err := mebibytes(gomem); gomem == "" || err != nil {
		fail("GOMEMLIMIT %q is missing or bad", gomem)
	} else if lerr == nil && g > 0.8*limit {
		fail("GOMEMLIMIT %s leaves less than 20%% of the memory limit %s to Fluent Bit itself", gomem, c.Resources.Limits["memory"])
	}

	// Security context.
	sc := c.SecurityContext
	if sc == nil {
		fail("no container securityContext")
		return errs
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		fail("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		fail("privileged is true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		fail("capabilities do not drop ALL")
	} else {
		for _, a := range sc.Capabilities.Add {
			if a != "DAC_READ_SEARCH" {
				fail("capability %s is added; reading host logs needs at most DAC_READ_SEARCH", a)
			}
		}
	}
	return errs
}

func renderDeployment(t *testing.T, rel string) *deployment {
	t.Helper()
	d, err := parseDeployment(kustomize(t, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return d
}

// TestKustomizeAndCrossCheck renders the base and the example overlay and cross-checks them.
func TestKustomizeAndCrossCheck(t *testing.T) {
	for _, rel := range kustomizations {
		t.Run(rel, func(t *testing.T) {
			d := renderDeployment(t, rel)
			for _, err := range d.check() {
				t.Error(err)
			}
			kinds := map[string]int{}
			for _, o := range d.objects {
				kinds[o.Kind]++
			}
			for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"} {
				if kinds[k] == 0 {
					t.Errorf("no %s in the output", k)
				}
			}
		})
	}
}

// TestCrossCheckCatchesMistakes: each check fails on the mistake it exists for (so a passing run
// means something).
func TestCrossCheckCatchesMistakes(t *testing.T) {
	base := kustomize(t, "k8s/base")
	ds := func(d *deployment) *daemonSet { return d.daemonSets[0] }
	ctr := func(d *deployment) *container { return &ds(d).Spec.Template.Spec.Containers[0] }
	configData := func(d *deployment, edit func(string) string) {
		for _, cm := range d.configMaps {
			for k, v := range cm.Data {
				if strings.HasSuffix(k, ".yaml") || strings.HasSuffix(k, ".conf") {
					cm.Data[k] = edit(v)
				}
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(*deployment)
		want   string
	}{
		{"mount without volume", func(d *deployment) {
			vs := &ds(d).Spec.Template.Spec.Volumes
			*vs = slices.DeleteFunc(*vs, func(v volume) bool { return v.Name == "tmp" })
		}, "volumeMount tmp"},
		{"missing service account", func(d *deployment) { ds(d).Spec.Template.Spec.ServiceAccountName = "nobody" }, "no such ServiceAccount"},
		{"missing ConfigMap", func(d *deployment) {
			for k, cm := range d.configMaps {
				if strings.HasPrefix(cm.Metadata.Name, "cluster-info") {
					delete(d.configMaps, k)
				}
			}
		}, "no ConfigMap"},
		{"missing ConfigMap key", func(d *deployment) { ctr(d).Env[0].ValueFrom.ConfigMapKeyRef.Key = "cluster.nam" }, "has no key"},
		{"probe on another port", func(d *deployment) { ctr(d).ReadinessProbe.HTTPGet.Port.Value = "2021" }, "readinessProbe port 2021"},
		{"config on another port", func(d *deployment) {
			configData(d, func(s string) string {
				return strings.NewReplacer("http_port: 2020", "http_port: 2021", "HTTP_Port                 2020", "HTTP_Port 2021").Replace(s)
			})
		}, "Fluent Bit listens on 2021"},
		{"liveness on health", func(d *deployment) { ctr(d).LivenessProbe.HTTPGet.Path = "/api/v1/health" }, "outage"},
		{"short termination grace", func(d *deployment) { v := int64(10); ds(d).Spec.Template.Spec.TerminationGracePeriodSeconds = &v }, "terminationGracePeriodSeconds 10"},
		{"exit grace over Fluent Bit grace", func(d *deployment) {
			configData(d, func(s string) string { return strings.ReplaceAll(s, "exit_grace: 5s", "exit_grace: 12s") })
		}, "exit_grace 12s"},
		{"GOMEMLIMIT at the limit", func(d *deployment) {
			for i := range ctr(d).Env {
				if ctr(d).Env[i].Name == "GOMEMLIMIT" {
					ctr(d).Env[i].Value = "512MiB"
				}
			}
		}, "GOMEMLIMIT 512MiB"},
		{"state mounted read-only", func(d *deployment) {
			for i := range ctr(d).VolumeMounts {
				if ctr(d).VolumeMounts[i].Name == "state" {
					ctr(d).VolumeMounts[i].ReadOnly = true
				}
			}
		}, "not on a writable volumeMount"},
		{"extra capability", func(d *deployment) {
			ctr(d).SecurityContext.Capabilities.Add = append(ctr(d).SecurityContext.Capabilities.Add, "SYS_ADMIN")
		}, "SYS_ADMIN"},
		{"writable root", func(d *deployment) { f := false; ctr(d).SecurityContext.ReadOnlyRootFilesystem = &f }, "readOnlyRootFilesystem"},
		{"no toleration", func(d *deployment) { ds(d).Spec.Template.Spec.Tolerations = nil }, "toleration"},
		{"surge", func(d *deployment) { ds(d).Spec.UpdateStrategy.RollingUpdate.MaxSurge.Value = "1" }, "maxSurge"},
		{"unknown priority class", func(d *deployment) { ds(d).Spec.Template.Spec.PriorityClassName = "high" }, "no such PriorityClass"},
		{"RBAC without watch", func(d *deployment) {
			for _, r := range d.roles {
				r.Rules[0].Verbs = []string{"get", "list"}
			}
		}, "may not watch pods"},
		{"config not mounted", func(d *deployment) { ctr(d).Args = []string{"-c", "/etc/fluent-bit.yaml"} }, "not under any volumeMount"},
		{"env the config needs is unset", func(d *deployment) {
			ctr(d).Env = slices.DeleteFunc(ctr(d).Env, func(e envVar) bool { return e.Name == "OPENSEARCH_ENDPOINT" })
		}, "${OPENSEARCH_ENDPOINT}"},
		{"no /var/log", func(d *deployment) {
			for i := range ds(d).Spec.Template.Spec.Volumes {
				if v := &ds(d).Spec.Template.Spec.Volumes[i]; v.HostPath != nil && v.HostPath.Path == "/var/log" {
					v.HostPath.Path = "/var/logs"
				}
			}
		}, "no hostPath volume for /var/log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDeployment(base)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(d)
			errs := d.check()
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tt.want) }) {
				t.Errorf("no error mentioning %q; got %v", tt.want, errs)
			}
		})
	}
}

// TestKubectlValidate validates every object offline against the Kubernetes schemas.
func TestKubectlValidate(t *testing.T) {
	kv := tool(t, "kubectl-validate", "go install sigs.k8s.io/kubectl-validate@v0.0.4", filepath.Join(goBin(t), "kubectl-validate"))
	dir := t.TempDir()
	validate := func(name string, data []byte) result {
		t.Helper()
		f := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// No kubeconfig: the embedded schemas of kubeVersion are the only source.
		r, err := run(cmdSpec{name: kv, args: []string{"--version", kubeVersion, f}, env: []string{"KUBECONFIG=" + filepath.Join(dir, "none")}, timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, rel := range kustomizations {
		out := kustomize(t, rel)
		if r := validate(strings.ReplaceAll(rel, "/", "_"), out); r.code != 0 {
			t.Errorf("kubectl-validate %s: %s", rel, r)
		}
	}

	// The validator is not a no-op: a misspelled field in the DaemonSet and a bad type in a
	// ClusterRole in the middle of the stream are both reported.
	out := kustomize(t, "k8s/base")
	bad := strings.Replace(string(out), "imagePullPolicy: IfNotPresent", "imagePullPolcy: IfNotPresent", 1)
	bad = strings.Replace(bad, "kind: ClusterRole\nmetadata:", "kind: ClusterRole\naggregationRule: 7\nmetadata:", 1)
	if strings.Count(bad, "imagePullPolcy")+strings.Count(bad, "aggregationRule: 7") != 2 {
		t.Fatal("the mutations did not apply")
	}
	r := validate("bad", []byte(bad))
	if r.code == 0 {
		t.Fatalf("kubectl-validate accepted a misspelled field: %s", r)
	}
	for _, want := range []string{"imagePullPolcy", "aggregationRule"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("kubectl-validate did not report %s: %s", want, r)
		}
	}
}

// TestOverlayIsOneFileWithRealValues: a user edits one file, and that file replaces every
// placeholder of the base.
func TestOverlayIsOneFileWithRealValues(t *testing.T) {
	entries, err := os.ReadDir(repoPath(t, "k8s/overlays/example"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "kustomization.yaml" {
		t.Errorf("the example overlay should be one file, kustomization.yaml; has %d entries", len(entries))
	}

	base, overlay := kustomize(t, "k8s/base"), kustomize(t, "k8s/overlays/example")
	if !bytes.Contains(base, []byte("REPLACE-ME")) {
		t.Fatal("the base has no REPLACE-ME placeholders: the check below would prove nothing")
	}
	if i := bytes.Index(overlay, []byte("REPLACE-ME")); i >= 0 {
		line := overlay[max(0, bytes.LastIndexByte(overlay[:i], '\n')+1):]
		line, _, _ = bytes.Cut(line, []byte("\n"))
		t.Errorf("the overlay leaves a placeholder of the base: %s", line)
	}

	d, err := parseDeployment(overlay)
	if err != nil {
		t.Fatal(err)
	}
	ds := d.daemonSets[0]
	sa := d.serviceAccts[nsName(ds.Metadata.Namespace, ds.Spec.Template.Spec.ServiceAccountName)]
	arn := sa.Annotations["eks.amazonaws.com/role-arn"]
	if !regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`).MatchString(arn) {
		t.Errorf("role ARN annotation %q is not an IAM role ARN", arn)
	}
	img := ds.Spec.Template.Spec.Containers[0].Image
	if strings.HasSuffix(img, ":dev") || !strings.Contains(img, "/") || strings.HasSuffix(img, ":latest") {
		t.Errorf("overlay image %q: want a registry path with a pinned tag", img)
	}
	for _, cm := range d.configMaps {
		if !strings.HasPrefix(cm.Metadata.Name, "cluster-info") {
			continue
		}
		if !regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`).MatchString(cm.Data["logs.region"]) {
			t.Errorf("logs.region %q is not an AWS region", cm.Data["logs.region"])
		}
		if !strings.HasPrefix(cm.Data["opensearch.endpoint"], "https://") {
			t.Errorf("opensearch.endpoint %q is not https", cm.Data["opensearch.endpoint"])
		}
	}
}
