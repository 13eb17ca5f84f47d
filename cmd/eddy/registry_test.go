package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/registry"
)

// registryBroker is an in-process eddy broker serving the schema registry.
type registryBroker struct {
	addr string // Kafka address
	url  string // registry base URL
}

// startRegistryBroker starts an eddy broker on a temporary data dir with
// the registry mounted on its HTTP listener; both close at cleanup.
func startRegistryBroker(t *testing.T) registryBroker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.HTTP = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.OffsetsTopicPartitions, cfg.TransactionTopicPartitions = 1, 1
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := registry.Mount(ctx, srv, registry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() }) // runs before the broker's Close
	return registryBroker{addr: srv.Addr(), url: "http://" + srv.HTTPAddr()}
}

// reg runs `eddy registry --registry URL args...`.
func (b registryBroker) reg(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return runAt(ctx, b.addr, stdin, append([]string{"registry", "--registry", b.url}, args...)...)
}

// mustReg is reg that fails the test on error.
func (b registryBroker) mustReg(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := b.reg(t, stdin, args...)
	if err != nil {
		t.Fatalf("eddy registry %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// wantRegErr runs args and checks that they fail with an error containing
// every one of want.
func (b registryBroker) wantRegErr(t *testing.T, stdin string, args []string, want ...string) string {
	t.Helper()
	out, _, err := b.reg(t, stdin, args...)
	if err == nil {
		t.Fatalf("eddy registry %s: no error; stdout:\n%s", strings.Join(args, " "), out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("eddy registry %s: error %q, want it to contain %q", strings.Join(args, " "), err, w)
		}
	}
	return out
}

func writeSchema(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "schema.avsc")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	userV1 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}`
	// userV2 adds a field with a default: backward compatible.
	userV2 = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}`
	// userBad adds a field without a default: not backward compatible.
	userBad = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"email","type":"string"}]}`
)

// TestRegistryCommands drives every `eddy registry` subcommand against a
// broker's registry.
func TestRegistryCommands(t *testing.T) {
	b := startRegistryBroker(t)

	// register: from a file and from stdin; the same schema again gives
	// the same id.
	id1 := strings.TrimSpace(b.mustReg(t, "", "register", "users-value", writeSchema(t, userV1)))
	if again := strings.TrimSpace(b.mustReg(t, userV1+"\n", "register", "users-value", "-")); again != id1 {
		t.Fatalf("re-registering gave id %s, want %s", again, id1)
	}
	id2 := strings.TrimSpace(b.mustReg(t, userV2, "register", "users-value", "-"))
	if id2 == id1 {
		t.Fatalf("v2 got the id of v1: %s", id2)
	}
	b.mustReg(t, userV1, "register", "orders-value", "-")

	// get: latest by default, by version, by id.
	wantV2 := "SUBJECT  users-value\nVERSION  2\nID       " + id2 + "\nTYPE     AVRO\nSCHEMA   " + userV2 + "\n"
	if out := b.mustReg(t, "", "get", "users-value"); out != wantV2 {
		t.Errorf("get users-value:\n%s\nwant:\n%s", out, wantV2)
	}
	if out := b.mustReg(t, "", "get", "users-value", "latest"); out != wantV2 {
		t.Errorf("get users-value latest:\n%s", out)
	}
	if out := b.mustReg(t, "", "get", "users-value", "1"); !strings.Contains(out, "VERSION  1\nID       "+id1+"\n") {
		t.Errorf("get users-value 1:\n%s", out)
	}
	wantID := "ID       " + id1 + "\nTYPE     AVRO\nUSED-BY  orders-value version 1\nUSED-BY  users-value version 1\nSCHEMA   " + userV1 + "\n"
	if out := b.mustReg(t, "", "get", "--id", id1); out != wantID {
		t.Errorf("get --id %s:\n%s\nwant:\n%s", id1, out, wantID)
	}

	// subjects
	if out := b.mustReg(t, "", "subjects"); out != "orders-value\nusers-value\n" {
		t.Errorf("subjects: %q", out)
	}
	if out := b.mustReg(t, "", "subjects", "--prefix", "us"); out != "users-value\n" {
		t.Errorf("subjects --prefix us: %q", out)
	}

	// check
	if out := b.mustReg(t, userV2, "check", "users-value", "-", "--version", "1"); out != "compatible\n" {
		t.Errorf("check v2 against v1: %q", out)
	}
	out, _, err := b.reg(t, userBad, "check", "users-value", "-")
	if !errors.Is(err, errIncompatible) || !strings.HasPrefix(out, "incompatible\n  ") || !strings.Contains(out, "email") {
		t.Errorf("check of an incompatible schema: %v\n%s", err, out)
	}

	// register: incompatible and invalid schemas fail with the registry's
	// code and message.
	b.wantRegErr(t, userBad, []string{"register", "users-value", "-"}, `register under subject "users-value": registry error 409`, "email")
	b.wantRegErr(t, `{"type":"nope"}`, []string{"register", "users-value", "-"}, "registry error 42201")
	b.wantRegErr(t, "", []string{"get", "nobody"}, `get subject "nobody" version latest: registry error 40401: `)
	b.wantRegErr(t, "", []string{"get", "users-value", "7"}, "registry error 40402")
	b.wantRegErr(t, "", []string{"get", "--id", "999"}, "registry error 40403")

	// config: global and per subject.
	if out := b.mustReg(t, "", "config"); out != "BACKWARD\n" {
		t.Errorf("config: %q", out)
	}
	if out := b.mustReg(t, "", "config", "users-value"); out != "BACKWARD\n" {
		t.Errorf("config users-value (global): %q", out)
	}
	if out := b.mustReg(t, "", "config", "users-value", "--set", "none"); out != "NONE\n" {
		t.Errorf("config --set none: %q", out)
	}
	if out := b.mustReg(t, "", "config", "users-value"); out != "NONE\n" {
		t.Errorf("config users-value after set: %q", out)
	}
	if out := b.mustReg(t, "", "config", "--set", "FULL"); out != "FULL\n" {
		t.Errorf("config --set FULL: %q", out)
	}
	// Now NONE lets the incompatible schema in.
	b.mustReg(t, userBad, "register", "users-value", "-")
	if out := b.mustReg(t, "", "config", "users-value", "--delete"); out != "FULL\n" {
		t.Errorf("config users-value --delete: %q, want the global FULL", out)
	}
	b.wantRegErr(t, "", []string{"config", "--set", "SIDEWAYS"}, "invalid --set")

	// delete: a version, soft then permanent; a whole subject.
	if out := b.mustReg(t, "", "delete", "users-value", "latest"); out != "soft-deleted subject users-value version 3\n" {
		t.Errorf("delete latest: %q", out)
	}
	if out := b.mustReg(t, "", "delete", "users-value", "3", "--permanent"); out != "permanently deleted subject users-value version 3\n" {
		t.Errorf("delete 3 --permanent: %q", out)
	}
	b.wantRegErr(t, "", []string{"get", "users-value", "3"}, "registry error 40402")
	if out := b.mustReg(t, "", "delete", "orders-value"); out != "soft-deleted subject orders-value: versions 1\n" {
		t.Errorf("delete orders-value: %q", out)
	}
	if out := b.mustReg(t, "", "subjects"); out != "users-value\n" {
		t.Errorf("subjects after delete: %q", out)
	}
	if out := b.mustReg(t, "", "subjects", "--deleted"); out != "orders-value\nusers-value\n" {
		t.Errorf("subjects --deleted: %q", out)
	}
	if out := b.mustReg(t, "", "delete", "users-value", "--permanent"); out != "permanently deleted subject users-value: versions 1, 2\n" {
		t.Errorf("delete users-value --permanent: %q", out)
	}
	if out := b.mustReg(t, "", "subjects", "--deleted"); out != "orders-value\n" {
		t.Errorf("subjects --deleted after permanent delete: %q", out)
	}
}

// TestRegistryCommandErrors checks argument and connection errors.
func TestRegistryCommandErrors(t *testing.T) {
	b := startRegistryBroker(t)
	b.wantRegErr(t, "", []string{"register", "s", filepath.Join(t.TempDir(), "missing.avsc")}, "no such file")
	b.wantRegErr(t, "  \n", []string{"register", "s", "-"}, "schema in stdin is empty")
	b.wantRegErr(t, strings.Repeat(" ", maxSchemaFileBytes+1), []string{"register", "s", "-"}, "larger than")
	b.wantRegErr(t, "", []string{"get", "s", "0"}, `invalid version "0"`)
	b.wantRegErr(t, "", []string{"get", "s", "--id", "3"}, "not both")
	b.wantRegErr(t, "", []string{"check", "s", "-", "--version", "x"}, "--version")
	b.wantRegErr(t, "", []string{"config", "--set", "NONE", "--delete"}, "not both")

	// A registry that is not there: the error names the request.
	dead := registryBroker{addr: b.addr, url: "http://127.0.0.1:1"}
	dead.wantRegErr(t, "", []string{"subjects"}, "list subjects: ", "127.0.0.1:1")

	// EDDY_REGISTRY sets the default URL.
	t.Setenv(registryEnv, b.url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := runAt(ctx, b.addr, "", "registry", "subjects"); err != nil {
		t.Errorf("with %s: %v", registryEnv, err)
	}
}
