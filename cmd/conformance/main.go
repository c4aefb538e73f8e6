// Command conformance runs the Matrix project's own test suite,
// Complement (github.com/matrix-org/complement), against Salon without
// Docker: `make conformance`.
//
// Complement is not part of Salon's module. The runner takes its source
// from the Go module cache (`go mod download`), or from a checkout named
// by COMPLEMENT_SRC, copies it into a temporary directory, and there:
//   - replaces the TestMain of tests/ and tests/csapi with one that deploys
//     Salon (testdata/salon_deployment.go: each homeserver is a `salon
//     serve` process on a free loopback port),
//   - applies a small patch so Complement's test package starts without a
//     Docker daemon and its blueprint deployments (OldDeploy) reach that
//     deployment too,
//   - gives each federation server Complement starts (federation.NewServer)
//     a certificate file of its own (upstream, concurrent servers share one
//     path in the temporary directory).
//
// Every test runs, the federation_*_test.go ones included: each Salon has
// a TLS federation listener with a certificate from Complement's CA, and
// reaches the deployment's other Salons and Complement's federation server
// (127.0.0.1:PORT) on loopback.
//
// It then runs `go test -json` on both packages, prints one line per
// top-level test and ends with "N passed, M failed, K skipped". It exits
// non-zero when a top-level test fails that expected-failures.txt does not
// list; tests on the list that pass are named so the list can shrink.
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// complementVersion is the Complement commit the expected-failure list was
// made against (its go.mod pseudo-version).
const complementVersion = "v0.0.0-20260701165844-50044edb68c3"

//go:embed testdata/salon_deployment.go
var deploymentSource string

func main() {
	var (
		salonBin = flag.String("salon", "bin/salon", "the salon binary to test")
		expected = flag.String("expected", "cmd/conformance/expected-failures.txt", "the list of expected failures")
		version  = flag.String("complement", complementVersion, "Complement module version (ignored when COMPLEMENT_SRC is set)")
		run      = flag.String("run", "", "only tests matching this regular expression (go test -run)")
		jsonOut  = flag.String("json", "", "also write go test -json output to this file")
		verbose  = flag.Bool("v", false, "print every test's output, not only new failures'")
		timeout  = flag.Duration("timeout", 45*time.Minute, "go test -timeout")
		keep     = flag.Bool("keep", false, "keep the temporary directory and server data")
	)
	flag.Parse()
	if err := runSuite(options{
		salonBin: *salonBin, expected: *expected, version: *version, run: *run,
		jsonOut: *jsonOut, verbose: *verbose, timeout: *timeout, keep: *keep,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

type options struct {
	salonBin, expected, version, run, jsonOut string
	verbose, keep                             bool
	timeout                                   time.Duration
}

func runSuite(o options) error {
	bin, err := filepath.Abs(o.salonBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("salon binary: %w (run `go build -o bin/salon ./cmd/salon`)", err)
	}
	allowed, err := readExpected(o.expected)
	if err != nil {
		return err
	}
	src, err := complementSource(o.version)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "salon-conformance-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	mod := filepath.Join(work, "complement")
	if err := copyTree(src, mod); err != nil {
		return fmt.Errorf("copy Complement: %w", err)
	}
	if err := assemble(mod); err != nil {
		return err
	}
	servers, tmp := filepath.Join(work, "servers"), filepath.Join(work, "tmp")
	for _, dir := range []string{servers, tmp} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}

	args := []string{"test", "-json", "-count=1", "-timeout", o.timeout.String(), "-p", "2"}
	if o.run != "" {
		args = append(args, "-run", o.run)
	}
	args = append(args, "./tests", "./tests/csapi")
	cmd := exec.Command("go", args...)
	cmd.Dir = mod
	env := append(os.Environ(),
		"GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0",
		"COMPLEMENT_BASE_IMAGE=salon",
		"COMPLEMENT_HOSTNAME_RUNNING_COMPLEMENT=127.0.0.1",
		"SALON_BIN="+bin,
		"SALON_CONFORMANCE_DIR="+servers,
		"TMPDIR="+tmp, // Complement's federation servers' certificates
	)
	if o.keep {
		env = append(env, "SALON_KEEP_DIRS=1")
	}
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var sink io.Writer = io.Discard
	if o.jsonOut != "" {
		f, err := os.Create(o.jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		sink = f
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	res := collect(io.TeeReader(out, sink), o.verbose, allowed)
	waitErr := cmd.Wait()
	elapsed := time.Since(start).Round(time.Second)
	if res.buildFailed {
		return fmt.Errorf("the Complement packages did not build: %v", waitErr)
	}
	return report(os.Stdout, res, allowed, elapsed)
}

// complementSource is a directory holding Complement's module: COMPLEMENT_SRC,
// or the module cache after `go mod download`.
func complementSource(version string) (string, error) {
	if dir := os.Getenv("COMPLEMENT_SRC"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "test_main.go")); err != nil {
			return "", fmt.Errorf("COMPLEMENT_SRC=%s is not a Complement checkout: %w", dir, err)
		}
		return dir, nil
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/matrix-org/complement@"+version)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download github.com/matrix-org/complement@%s: %v %s (set COMPLEMENT_SRC to a checkout instead)", version, runErr, info.Error)
	}
	return info.Dir, nil
}

// copyTree copies a directory (regular files only), writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// patch is one textual change to a Complement file; old must occur once.
type patch struct{ file, old, new string }

// patches let Complement's test package start without Docker, send
// blueprint deployments (OldDeploy) to the Salon deployment, and keep the
// certificates of concurrent federation servers apart.
var patches = []patch{
	{
		file: "test_main.go",
		old:  "func OldDeploy(t ct.TestLike, blueprint b.Blueprint) Deployment {\n\tt.Helper()\n",
		new: "// OldDeployHook, when set, deploys blueprints instead of Docker (Salon's harness).\n" +
			"var OldDeployHook func(t ct.TestLike, blueprint b.Blueprint, cfg *config.Complement) Deployment\n\n" +
			"func OldDeploy(t ct.TestLike, blueprint b.Blueprint) Deployment {\n\tt.Helper()\n" +
			"\tif OldDeployHook != nil && testPackage != nil {\n\t\treturn OldDeployHook(t, blueprint, testPackage.Config)\n\t}\n",
	},
	{
		file: "test_package.go",
		old:  "\tcfg := config.NewConfigFromEnvVars(pkgNamespace, \"\")\n",
		new: "\tcfg := config.NewConfigFromEnvVars(pkgNamespace, \"\")\n" +
			"\tif customDeployer != nil {\n\t\tlogrus.SetLevel(logrus.ErrorLevel)\n" +
			"\t\treturn &TestPackage{Config: cfg, existingDeploymentMu: &sync.Mutex{}}, nil\n\t}\n",
	},
	{
		file: "federation/server.go",
		old: "\ttlsCertPath := path.Join(os.TempDir(), \"complement.crt\")\n" +
			"\ttlsKeyPath := path.Join(os.TempDir(), \"complement.key\")\n",
		new: "\ttlsDir, err := os.MkdirTemp(\"\", \"complement-tls-\")\n" +
			"\tif err != nil {\n\t\treturn nil, \"\", \"\", err\n\t}\n" +
			"\ttlsCertPath := path.Join(tlsDir, \"complement.crt\")\n" +
			"\ttlsKeyPath := path.Join(tlsDir, \"complement.key\")\n",
	},
	{
		file: "test_package.go",
		old:  "\ttp.complementBuilder.Cleanup()\n}",
		new:  "\tif tp.complementBuilder != nil {\n\t\ttp.complementBuilder.Cleanup()\n\t}\n}",
	},
}

// assemble patches the copy and puts Salon's TestMain into both packages.
func assemble(mod string) error {
	for _, p := range patches {
		path := filepath.Join(mod, p.file)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), p.old); n != 1 {
			return fmt.Errorf("patch %s: the text to replace occurs %d times (Complement changed; update cmd/conformance)", p.file, n)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), p.old, p.new, 1)), 0o644); err != nil {
			return err
		}
	}
	for _, pkg := range []struct{ dir, name string }{{"tests", "tests"}, {"tests/csapi", "csapi_tests"}} {
		dir := filepath.Join(mod, pkg.dir)
		if err := os.Remove(filepath.Join(dir, "main_test.go")); err != nil {
			return fmt.Errorf("%s has no main_test.go to replace: %w", pkg.dir, err)
		}
		src := strings.Replace(deploymentSource, "package complementsalon", "package "+pkg.name, 1)
		if err := os.WriteFile(filepath.Join(dir, "salon_deployment_test.go"), []byte(src), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readExpected reads "TestName: reason" lines; # starts a comment.
func readExpected(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, ":")
		name, reason = strings.TrimSpace(name), strings.TrimSpace(reason)
		if !ok || name == "" || reason == "" || strings.ContainsAny(name, " \t/") {
			return nil, fmt.Errorf("%s:%d: want \"TestName: reason\"", path, n)
		}
		if _, dup := list[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, n, name)
		}
		list[name] = reason
	}
	return list, sc.Err()
}

// event is a line of `go test -json`.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type results struct {
	outcome     map[string]string // top-level test → pass, fail, skip
	skipReason  map[string]string
	output      map[string]*strings.Builder
	pkgOutput   strings.Builder
	buildFailed bool
}

// collect reads go test -json and prints a line per finished top-level
// test, with the output of failures not on the list.
func collect(r io.Reader, verbose bool, allowed map[string]string) *results {
	res := &results{outcome: map[string]string{}, skipReason: map[string]string{}, output: map[string]*strings.Builder{}}
	dec := json.NewDecoder(r)
	for {
		var e event
		if err := dec.Decode(&e); err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "conformance: reading go test output:", err)
			}
			return res
		}
		if e.Test == "" {
			if e.Action == "output" && (strings.Contains(e.Output, "[build failed]") || strings.Contains(e.Output, "[setup failed]")) {
				res.buildFailed = true
			}
			if e.Action == "output" && res.pkgOutput.Len() < 1<<20 {
				res.pkgOutput.WriteString(e.Output)
			}
			if e.Action == "fail" && len(res.outcome) == 0 {
				// A package that fails before any test: show why.
				fmt.Fprint(os.Stderr, res.pkgOutput.String())
			}
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		switch e.Action {
		case "output":
			b := res.output[top]
			if b == nil {
				b = &strings.Builder{}
				res.output[top] = b
			}
			if b.Len() < 1<<20 {
				b.WriteString(e.Output)
			}
			if e.Test == top && strings.Contains(e.Output, "--- SKIP") {
				res.skipReason[top] = ""
			}
		case "pass", "fail", "skip":
			if e.Test != top {
				continue
			}
			res.outcome[top] = e.Action
			mark := map[string]string{"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[e.Action]
			note := ""
			if e.Action == "fail" {
				if _, ok := allowed[top]; ok {
					note = " (expected)"
				}
			}
			fmt.Printf("%s %-70s %6.1fs%s\n", mark, top, e.Elapsed, note)
			if e.Action == "skip" {
				res.skipReason[top] = skipLine(res.output[top])
			}
			_, ok := allowed[top]
			if verbose || (e.Action == "fail" && !ok) {
				if b := res.output[top]; b != nil {
					fmt.Print(b.String())
				}
			}
			delete(res.output, top)
		}
	}
}

// skipLine finds the reason a test gave for skipping.
func skipLine(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	lines := strings.Split(b.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "===") {
			return l
		}
	}
	return ""
}

func report(w io.Writer, res *results, allowed map[string]string, elapsed time.Duration) error {
	var passed, failed, skipped int
	var unexpected, fixed []string
	for name, out := range res.outcome {
		_, listed := allowed[name]
		switch out {
		case "pass":
			passed++
			if listed {
				fixed = append(fixed, name)
			}
		case "fail":
			failed++
			if !listed {
				unexpected = append(unexpected, name)
			}
		case "skip":
			skipped++
		}
	}
	sort.Strings(unexpected)
	sort.Strings(fixed)
	fmt.Fprintf(w, "\nwall time %s\n", elapsed)
	if len(fixed) > 0 {
		fmt.Fprintf(w, "passing now, remove from the expected-failure list: %s\n", strings.Join(fixed, ", "))
	}
	if len(unexpected) > 0 {
		fmt.Fprintf(w, "failing and not on the expected-failure list: %s\n", strings.Join(unexpected, ", "))
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if len(unexpected) > 0 {
		return fmt.Errorf("%d unexpected failures", len(unexpected))
	}
	if len(res.outcome) == 0 {
		return errors.New("no tests ran")
	}
	return nil
}
