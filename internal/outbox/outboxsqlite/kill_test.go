package outboxsqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evproxy/evproxy/internal/outbox"
)

// killChildEnv names the database a TestKillSafety child process writes.
const killChildEnv = "OUTBOXSQLITE_KILL_CHILD_DB"

// TestKillSafety runs a child process (this test binary) that inserts
// batches in a loop and reports each committed batch's event ids on
// stdout, SIGKILLs it mid-stream, reopens the database and checks every
// reported id is there: an acknowledged insert survives kill -9.
func TestKillSafety(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.db")
	s := openStore(t, path)
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillSafety$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // closed when the test ends: the child exits
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	var reported []string
	batches := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	read := func(max int) {
		for batches < max && sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				reported = append(reported, strings.Fields(line)...)
				batches++
			}
		}
	}
	read(50)
	if batches < 50 {
		t.Fatalf("child reported %d batches, then: %v", batches, sc.Err())
	}

	// While the child runs, the database is locked to it.
	if s2, err := Open(ctxFor(t), path); err == nil {
		s2.Close()
		t.Fatal("Open succeeded while the child has the database open")
	} else if want := fmt.Sprintf("(pid %d)", cmd.Process.Pid); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while the child runs: %v, want ErrInUse naming %s", err, want)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	killed = true
	read(math.MaxInt) // batches reported before the kill landed count too
	cmd.Wait()

	s = openStore(t, path)
	have := map[string]bool{}
	for _, r := range claimAll(t, s) {
		have[r.EventID] = true
	}
	missing := 0
	for _, id := range reported {
		if !have[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged rows missing after kill -9", missing, len(reported))
	}
	t.Logf("%d acknowledged rows in %d batches all present; %d rows in all", len(reported), batches, len(have))
}

// killChild inserts batches into the database at path until killed or
// until its stdin closes, printing "committed <ids>" after each commit.
func killChild(path string) {
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	value := []byte(strings.Repeat("x", 300))
	for b := 0; b < 1_000_000; b++ {
		n := 1 + b%20
		msgs := make([]*outbox.Message, n)
		ids := make([]string, n)
		for i := range msgs {
			ids[i] = "c" + strconv.Itoa(b) + "-" + strconv.Itoa(i)
			msgs[i] = &outbox.Message{EventID: ids[i], Topic: "t", Partition: -1, Key: []byte(strconv.Itoa(i % 7)), Value: value}
		}
		if _, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		fmt.Println("committed " + strings.Join(ids, " "))
	}
	os.Exit(0)
}
