package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// glibc is a glibc version.
type glibc struct{ major, minor, patch int }

func (g glibc) String() string {
	if g.patch != 0 {
		return fmt.Sprintf("%d.%d.%d", g.major, g.minor, g.patch)
	}
	return fmt.Sprintf("%d.%d", g.major, g.minor)
}

func (g glibc) less(o glibc) bool {
	if g.major != o.major {
		return g.major < o.major
	}
	if g.minor != o.minor {
		return g.minor < o.minor
	}
	return g.patch < o.patch
}

// debianGlibc is the glibc each Debian release ships: the libc6 package of bookworm (Debian 12)
// is 2.36-9+debXuY, of trixie (Debian 13) 2.41-12+debXuY (packages.debian.org, source package
// glibc; this machine's `ldd --version` reads "Debian GLIBC 2.36-9+deb12u14").
var debianGlibc = map[string]glibc{
	"bookworm": {2, 36, 0},
	"trixie":   {2, 41, 0},
}

// fluentBitDebian is the Debian release under the official fluent/fluent-bit image, read from
// dockerfiles/Dockerfile in fluent/fluent-bit: up to 4.2.x the production stage is
// gcr.io/distroless/cc-debian12 (bookworm); from 5.0 (5.0.3 read) it is
// gcr.io/distroless/cc-debian13 (trixie), and 5.1.x kept it. A version missing here fails the
// test until its base is looked up and added.
var fluentBitDebian = map[string]string{
	"4.2.1": "bookworm",
	"5.0.3": "trixie",
	"5.1.1": "trixie",
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// parseDockerfile splits a Dockerfile into instructions. Comment lines (also inside a
// continuation) are dropped, as Docker does.
func parseDockerfile(data []byte) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		cont := strings.HasSuffix(trimmed, `\`)
		cur.WriteString(strings.TrimSuffix(trimmed, `\`))
		cur.WriteByte(' ')
		if cont {
			continue
		}
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	if cur.Len() != 0 {
		return nil, fmt.Errorf("line %d: the file ends inside a continuation", start)
	}
	return out, sc.Err()
}

// execForm decodes a JSON-array argument (["a", "b"]); ok is false for shell form.
func execForm(s string) ([]string, bool) {
	var v []string
	if !strings.HasPrefix(strings.TrimSpace(s), "[") || json.Unmarshal([]byte(s), &v) != nil {
		return nil, false
	}
	return v, true
}

// flags splits leading --name=value flags off an argument string.
func flags(s string) (map[string]string, string) {
	f := map[string]string{}
	for strings.HasPrefix(s, "--") {
		word, rest, _ := strings.Cut(s, " ")
		k, v, _ := strings.Cut(strings.TrimPrefix(word, "--"), "=")
		f[k] = v
		s = strings.TrimSpace(rest)
	}
	return f, s
}

// stage is one FROM ... of a Dockerfile.
type stage struct {
	name, image string
	workdir     string
	copies      []copyInstr
	instrs      []instruction
}

type copyInstr struct {
	from string   // --from stage, "" for the build context
	srcs []string // relative to the context, or paths in the --from stage
	dest string
}

// dockerfile is the parsed docker/Dockerfile.
type dockerfile struct {
	args   map[string]string // global ARG defaults
	stages []*stage
}

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	ins, err := parseDockerfile(readRepo(t, "docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{args: map[string]string{}}
	var cur *stage
	subst := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(m string) string {
			return d.args[strings.Trim(m, "${}")]
		})
	}
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			if cur == nil {
				k, v, _ := strings.Cut(in.args, "=")
				d.args[k] = v
			}
		case "FROM":
			_, rest := flags(in.args)
			f := strings.Fields(rest)
			s := &stage{image: subst(f[0]), workdir: "/"}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			d.stages = append(d.stages, s)
			cur = s
		default:
			if cur == nil {
				t.Fatalf("line %d: %s before FROM", in.line, in.cmd)
			}
			cur.instrs = append(cur.instrs, in)
			switch in.cmd {
			case "WORKDIR":
				cur.workdir = path.Join(cur.workdir, in.args)
			case "COPY", "ADD":
				fl, rest := flags(in.args)
				words, ok := execForm(rest)
				if !ok {
					words = strings.Fields(rest)
				}
				dest := words[len(words)-1]
				if !path.IsAbs(dest) {
					dest = path.Join(cur.workdir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(dest, "/")]
				}
				cur.copies = append(cur.copies, copyInstr{from: fl["from"], srcs: words[:len(words)-1], dest: dest})
			}
		}
	}
	if len(d.stages) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime", len(d.stages))
	}
	return d
}

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (s *stage) instr(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// imageFiles maps every file path the runtime stage copies in to its copy.
func (s *stage) imageFiles() map[string]copyInstr {
	files := map[string]copyInstr{}
	for _, c := range s.copies {
		for _, src := range c.srcs {
			dst := c.dest
			if strings.HasSuffix(dst, "/") || len(c.srcs) > 1 {
				dst = path.Join(dst, path.Base(src))
			}
			files[dst] = c
		}
	}
	return files
}

// makeVar reads `NAME := value` from the Makefile.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*:?=\s*(\S+)\s*$`).FindSubmatch(readRepo(t, "Makefile"))
	if m == nil {
		t.Fatalf("Makefile does not set %s", name)
	}
	return string(m[1])
}

// TestDockerfileLint runs dockerfilelint, and shows it reports a bad Dockerfile.
func TestDockerfileLint(t *testing.T) {
	bin := tool(t, "dockerfilelint", "npm ci --prefix test/deploy/_npm", repoPath(t, "test/deploy/_npm/node_modules/.bin/dockerfilelint"))
	lint := func(file string) (int, string) {
		t.Helper()
		r, err := run(cmdSpec{name: bin, args: []string{"-o", "json", file}, timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			TotalIssues int `json:"totalIssues"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("dockerfilelint output is not its JSON report: %v\n%s", err, r)
		}
		if (rep.TotalIssues == 0) != (r.code == 0) {
			t.Fatalf("dockerfilelint exit %d disagrees with %d issues", r.code, rep.TotalIssues)
		}
		return rep.TotalIssues, r.stdout
	}
	if n, out := lint(repoPath(t, "docker/Dockerfile")); n != 0 {
		t.Errorf("docker/Dockerfile has %d lint issues: %s", n, out)
	}
	bad := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(bad, []byte("FROM debian\nrun apt-get install curl\nEXPOSE 99999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, out := lint(bad); n < 3 {
		t.Errorf("dockerfilelint found %d issues in a Dockerfile with at least 3: %s", n, out)
	}
}

// TestDockerfilePinsAndGlibcPairing: pinned versions, and a builder whose glibc is not newer
// than the runtime image's (a cgo .so needs the glibc it was linked against, or older).
func TestDockerfilePinsAndGlibcPairing(t *testing.T) {
	d := loadDockerfile(t)
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	goVer, fbVer := d.args["GO_VERSION"], d.args["FLUENT_BIT_VERSION"]
	if !semver.MatchString(goVer) || !semver.MatchString(fbVer) {
		t.Fatalf("GO_VERSION=%q FLUENT_BIT_VERSION=%q: want pinned x.y.z build arguments", goVer, fbVer)
	}
	// The builder's Go is the go.mod's.
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readRepo(t, "go.mod"))
	if m == nil || !strings.HasPrefix(goVer, string(m[1])+".") {
		t.Errorf("GO_VERSION %s is not the go.mod's Go %s", goVer, m[1])
	}

	builder := d.stage("builder")
	if builder == nil || d.stages[0] != builder {
		t.Fatal("the first stage must be named builder")
	}
	bm := regexp.MustCompile(`^golang:` + regexp.QuoteMeta(goVer) + `-(\w+)$`).FindStringSubmatch(builder.image)
	if bm == nil {
		t.Fatalf("builder image %q: want golang:%s-<debian release>", builder.image, goVer)
	}
	runtime := d.stages[len(d.stages)-1]
	if want := "fluent/fluent-bit:" + fbVer; runtime.image != want {
		t.Fatalf("runtime image %q, want the official %s", runtime.image, want)
	}
	builderGlibc, ok := debianGlibc[bm[1]]
	if !ok {
		t.Fatalf("builder Debian %q: its glibc is not in debianGlibc", bm[1])
	}
	deb, ok := fluentBitDebian[fbVer]
	if !ok {
		t.Fatalf("Fluent Bit %s: its base Debian is not in fluentBitDebian (read fluent/fluent-bit dockerfiles/Dockerfile at that tag)", fbVer)
	}
	if runtimeGlibc := debianGlibc[deb]; runtimeGlibc.less(builderGlibc) {
		t.Errorf("builder glibc %s (%s) is newer than the runtime's %s (%s): the .so would not load", builderGlibc, bm[1], runtimeGlibc, deb)
	}
}

// TestDockerfilePathsAgree: what the Dockerfile builds, copies and runs is what the configs,
// the Makefile and the plugins files name.
func TestDockerfilePathsAgree(t *testing.T) {
	d := loadDockerfile(t)
	builder, runtime := d.stage("builder"), d.stages[len(d.stages)-1]
	files := runtime.imageFiles()

	// The .so: built by make at $(SO) under the builder's WORKDIR, copied to the path both
	// plugins files load.
	soSrc := path.Join(builder.workdir, makeVar(t, "SO"))
	soDest := pluginsFileSO(t, "docker/conf/plugins.conf")
	if c, ok := files[soDest]; !ok {
		t.Errorf("the image has no %s (the path plugins.conf loads)", soDest)
	} else if c.from != "builder" || len(c.srcs) != 1 || c.srcs[0] != soSrc {
		t.Errorf("%s is copied from %s %v, want builder %s (make build's output)", soDest, c.from, c.srcs, soSrc)
	}
	if !slices.ContainsFunc(builder.instr("RUN"), func(in instruction) bool { return strings.Contains(in.args, "make build") }) {
		t.Error("the builder does not run make build")
	}

	// The health check: a static binary built in the builder, run in exec form (no shell in the
	// distroless image), asking the config's HTTP port.
	hc := runtime.instr("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("%d HEALTHCHECK instructions, want 1", len(hc))
	}
	_, hcCmd := flags(hc[0].args)
	argv, ok := execForm(strings.TrimSpace(strings.TrimPrefix(hcCmd, "CMD")))
	if !strings.HasPrefix(hcCmd, "CMD ") || !ok || len(argv) == 0 {
		t.Fatalf("HEALTHCHECK %q: want CMD in exec form (the image has no shell)", hc[0].args)
	}
	if c, ok := files[argv[0]]; !ok || c.from != "builder" {
		t.Errorf("HEALTHCHECK runs %s, which the image does not copy from the builder", argv[0])
	} else {
		re := regexp.MustCompile(`CGO_ENABLED=0 go build .*-o (\S+) \./docker/healthcheck`)
		built := false
		for _, in := range builder.instr("RUN") {
			if m := re.FindStringSubmatch(in.args); m != nil && path.Join(builder.workdir, m[1]) == c.srcs[0] {
				built = true
			}
		}
		if !built {
			t.Errorf("the builder does not build ./docker/healthcheck statically to %s", c.srcs[0])
		}
	}

	// The default config: ENTRYPOINT fluent-bit, CMD -c <a copied config>.
	ep := runtime.instr("ENTRYPOINT")
	if len(ep) != 1 {
		t.Fatal("want one ENTRYPOINT")
	}
	if argv, ok := execForm(ep[0].args); !ok || len(argv) != 1 || argv[0] != "/fluent-bit/bin/fluent-bit" {
		t.Errorf("ENTRYPOINT %s, want [\"/fluent-bit/bin/fluent-bit\"]", ep[0].args)
	}
	cmd := runtime.instr("CMD")
	if len(cmd) != 1 {
		t.Fatal("want one CMD")
	}
	cargv, ok := execForm(cmd[0].args)
	if !ok || len(cargv) != 2 || cargv[0] != "-c" {
		t.Fatalf("CMD %s, want [\"-c\", CONFIG]", cmd[0].args)
	}
	defaultConf := cargv[1]
	c, ok := files[defaultConf]
	if !ok || c.from != "" {
		t.Fatalf("CMD runs %s, which is not copied from the repository", defaultConf)
	}

	// Every config the image ships: copied from docker/conf, and its plugins file is in the image.
	for dst, c := range files {
		if c.from != "" {
			continue
		}
		var src string
		for _, s := range c.srcs {
			if path.Base(s) == path.Base(dst) {
				src = s
			}
		}
		if _, err := os.Stat(repoPath(t, src)); err != nil {
			t.Errorf("COPY %s: %v", src, err)
			continue
		}
		if !strings.HasPrefix(path.Base(src), "fluent-bit.") {
			continue
		}
		conf := loadConfig(t, src)
		pf := conf.Service["plugins_file"]
		if _, ok := files[pf]; !ok {
			t.Errorf("%s loads plugins from %s, which is not in the image", src, pf)
		}
		port, err := conf.httpPort()
		if err != nil {
			t.Fatal(err)
		}
		if dst == defaultConf {
			want := "http://127.0.0.1:" + strconv.Itoa(port) + "/api/v1/health"
			if len(argv) < 2 || argv[len(argv)-1] != want {
				t.Errorf("HEALTHCHECK %v does not ask %s (the default config's port)", argv, want)
			}
			if exp := runtime.instr("EXPOSE"); len(exp) != 1 || exp[0].args != strconv.Itoa(port) {
				t.Errorf("EXPOSE %v, want the HTTP port %d", exp, port)
			}
		}
	}
	// The demo's config (mounted by compose) loads plugins from the image too.
	if pf := loadConfig(t, demoConf).Service["plugins_file"]; files[pf].dest == "" {
		t.Errorf("%s loads plugins from %s, which is not in the image", demoConf, pf)
	}

	// Builder sources exist, and the Dockerfile-specific ignore file lets each one through.
	ignore := string(readRepo(t, "docker/Dockerfile.dockerignore"))
	for _, st := range d.stages {
		for _, c := range st.copies {
			if c.from != "" {
				continue
			}
			for _, src := range c.srcs {
				if _, err := os.Stat(repoPath(t, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
				if !reincluded(ignore, src) {
					t.Errorf("docker/Dockerfile.dockerignore does not let %s into the build context", src)
				}
			}
		}
	}
}

// reincluded reports whether a "!" line of an ignore file (that starts by excluding everything)
// lets src, or a directory above it, back in.
func reincluded(ignore, src string) bool {
	src = strings.TrimSuffix(src, "/")
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		p, ok := strings.CutPrefix(line, "!")
		if !ok {
			continue
		}
		p = strings.TrimSuffix(p, "/")
		if src == p || strings.HasPrefix(src, p+"/") {
			return true
		}
	}
	return false
}

// TestDockerfileCopiesWhatThePluginImports: every package of this module that ./plugin needs
// lives in a directory the builder copies.
func TestDockerfileCopiesWhatThePluginImports(t *testing.T) {
	d := loadDockerfile(t)
	var copied []string
	for _, c := range d.stage("builder").copies {
		if c.from == "" {
			for _, s := range c.srcs {
				copied = append(copied, strings.TrimSuffix(s, "/"))
			}
		}
	}
	r := mustRun(t, cmdSpec{
		name: "go", args: []string{"list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./plugin"},
		dir: root(t), timeout: 3 * time.Minute,
	})
	dirs := strings.Fields(r.stdout)
	if len(dirs) == 0 {
		t.Fatal("go list found no packages of this module under ./plugin")
	}
	for _, dir := range dirs {
		rel, err := filepath.Rel(root(t), dir)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		if !slices.ContainsFunc(copied, func(c string) bool { return rel == c || strings.HasPrefix(rel, c+"/") }) {
			t.Errorf("./plugin needs %s, which the builder stage does not copy (copies %v)", rel, copied)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\nARG A=1\nFROM x:${A} AS b\nRUN a && \\\n    # note\n    b\nCOPY --from=b /x /y\n"
	ins, err := parseDockerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []instruction{{2, "ARG", "A=1"}, {3, "FROM", "x:${A} AS b"}, {4, "RUN", "a &&  b"}, {7, "COPY", "--from=b /x /y"}}
	if len(ins) != len(want) {
		t.Fatalf("got %v, want %v", ins, want)
	}
	for i := range want {
		if ins[i] != want[i] {
			t.Errorf("instruction %d = %+v, want %+v", i, ins[i], want[i])
		}
	}
	if _, err := parseDockerfile([]byte("RUN a \\\n")); err == nil {
		t.Error("a dangling continuation was accepted")
	}
}
