package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// TestMain lets the test binary act as a second process writing to the
// store, as keyctl does beside a running apiserver.
func TestMain(m *testing.M) {
	if path := os.Getenv("KEYSTORE_TEST_WRITER"); path != "" {
		os.Exit(runWriter(path))
	}
	os.Exit(m.Run())
}

// runWriter generates and revokes keys in the store at addr as fast as it
// can for two seconds.
func runWriter(addr string) int {
	ctx := context.Background()
	s, err := keystore.Open(ctx, addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	n := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); n++ {
		k, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "writer"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "generate:", err)
			return 1
		}
		if _, err := s.Revoke(ctx, k.ID); err != nil {
			fmt.Fprintln(os.Stderr, "revoke:", err)
			return 1
		}
	}
	fmt.Println(n)
	return 0
}

// TestConcurrentProcesses runs a writer process beside this one, which
// authenticates as fast as it can, and checks neither sees an error such as
// "database is locked".
func TestConcurrentProcesses(t *testing.T) { forEachBackend(t, testConcurrentProcesses) }

func testConcurrentProcesses(t *testing.T, b backend) {
	s, path := openStore(t, b)
	ctx := context.Background()
	_, plain := generate(t, s, keystore.NewKey{Hostname: "127.0.0.1"})

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYSTORE_TEST_WRITER="+path)
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("127.0.0.1")
	auths := 0
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
loop:
	for {
		select {
		case werr = <-done:
			break loop
		default:
		}
		if _, err := s.Authenticate(ctx, plain, addr); err != nil {
			t.Fatalf("Authenticate after %d calls: %v", auths, err)
		}
		auths++
	}
	if werr != nil {
		t.Fatalf("writer process: %v: %s", werr, stderr.String())
	}
	var writes int
	fmt.Sscan(out.String(), &writes)
	t.Logf("%d authentications beside %d generate+revoke pairs in another process", auths, writes)
	// Progress, not speed: a reader starved by the writer's locks would
	// manage a handful; on a loaded 2-core machine it manages about 1,000.
	if writes == 0 || auths < 100 {
		t.Errorf("got %d writes and %d authentications; want both processes to make progress", writes, auths)
	}
	keys, err := s.List(ctx, keystore.Filter{Hostname: "writer", All: true})
	if err != nil || len(keys) != writes {
		t.Errorf("List = %d keys, %v; want %d", len(keys), err, writes)
	}
	if _, err := s.Authenticate(ctx, plain, netip.MustParseAddr("127.0.0.9")); !errors.Is(err, keystore.ErrHostMismatch) {
		t.Errorf("error = %v, want ErrHostMismatch", err)
	}
}
