package deploy_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var glibcVersion = regexp.MustCompile(`\bGLIBC_(\d+)\.(\d+)(?:\.(\d+))?\b`)

// glibcNeeds returns every GLIBC_x.y[.z] symbol version in `objdump -T` output, with a symbol
// that needs it. GLIBC_PRIVATE and other libraries' versions are not glibc releases.
func glibcNeeds(objdump string) map[glibc]string {
	out := map[glibc]string{}
	for _, line := range strings.Split(objdump, "\n") {
		m := glibcVersion.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var g glibc
		g.major, _ = strconv.Atoi(m[1])
		g.minor, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			g.patch, _ = strconv.Atoi(m[3])
		}
		f := strings.Fields(line)
		out[g] = f[len(f)-1]
	}
	return out
}

func TestGlibcNeeds(t *testing.T) {
	dump := `
build/x.so:     file format elf64-x86-64

DYNAMIC SYMBOL TABLE:
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.2.5) pthread_mutex_lock
0000000000000000      DF *UND*	0000000000000000  GLIBC_2.34  __libc_start_main
0000000000000000      DF *UND*	0000000000000000 (GLIBC_2.10) sched_getcpu
0000000000000000      DF *UND*	0000000000000000 (GLIBC_PRIVATE) _dl_x
0000000000000000      DF *UND*	0000000000000000 (GCC_3.0) _Unwind_Resume
00000000001a2b30 g    DF .text	0000000000000044  Base        FLBPluginRegister
`
	got := glibcNeeds(dump)
	want := map[glibc]string{{2, 2, 5}: "pthread_mutex_lock", {2, 34, 0}: "__libc_start_main", {2, 10, 0}: "sched_getcpu"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for g, sym := range want {
		if got[g] != sym {
			t.Errorf("GLIBC_%s: got %q, want %q", g, got[g], sym)
		}
	}
	// Versions compare as numbers: 2.10 is newer than 2.9.
	if !(glibc{2, 9, 0}).less(glibc{2, 10, 0}) || (glibc{2, 36, 0}).less(glibc{2, 2, 5}) {
		t.Error("glibc.less compares as text")
	}
}

// TestPluginGlibc builds the plugin as make build does and checks that no symbol needs a newer
// glibc than the runtime image ships, and that it exports what Fluent Bit's Go proxy looks up.
func TestPluginGlibc(t *testing.T) {
	objdump := tool(t, "objdump", "apt-get install binutils")
	so := plugin(t)
	d := loadDockerfile(t)
	runtimeGlibc := debianGlibc[fluentBitDebian[d.args["FLUENT_BIT_VERSION"]]]
	if runtimeGlibc == (glibc{}) {
		t.Fatalf("no glibc known for Fluent Bit %s", d.args["FLUENT_BIT_VERSION"])
	}

	r := mustRun(t, cmdSpec{name: objdump, args: []string{"-T", so}, timeout: time.Minute})
	needs := glibcNeeds(r.stdout)
	if len(needs) == 0 {
		t.Fatalf("objdump -T lists no GLIBC_ versions: is %s a cgo shared object?\n%s", so, r.stdout)
	}
	newest := glibc{}
	for g, sym := range needs {
		if runtimeGlibc.less(g) {
			t.Errorf("%s needs GLIBC_%s, newer than Fluent Bit %s's %s", sym, g, d.args["FLUENT_BIT_VERSION"], runtimeGlibc)
		}
		if newest.less(g) {
			newest = g
		}
	}
	t.Logf("newest glibc symbol version needed: %s (runtime image has %s)", newest, runtimeGlibc)

	// Fluent Bit's Go proxy dlsym()s these (FLUENT_BIT_ABI.md).
	for _, want := range [][]string{{"FLBPluginRegister"}, {"FLBPluginInit"}, {"FLBPluginFlushCtx", "FLBPluginFlush"}, {"FLBPluginExitCtx", "FLBPluginExit"}} {
		found := false
		for _, sym := range want {
			if regexp.MustCompile(`(?m)\s\.text\s.*\s` + sym + `$`).MatchString(r.stdout) {
				found = true
			}
		}
		if !found {
			t.Errorf("the .so does not export %s", strings.Join(want, " or "))
		}
	}
}
