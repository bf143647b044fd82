package outboxpgx

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen backoff between reconnection attempts.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// Listen calls wake for each notification on "<schema>_outbox" (sent by
// publish() at commit), until ctx ends; then it returns nil. It holds a
// connection of its own, outside the pool, and reconnects with
// exponential backoff when it fails. wake is also called each time the
// connection starts listening (the first time too), since notifications
// sent while it was not listening are lost: a caller can use that first
// call to know Listen is ready. wake runs on Listen's goroutine and must
// not block.
func (s *Store) Listen(ctx context.Context, wake func()) error {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		listened, _ := s.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			break
		}
		if listened {
			backoff = listenMinBackoff
		}
		// Full jitter: processes that lost the database together do not
		// reconnect together.
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
	return nil
}

// listenOnce connects, listens and calls wake until the connection fails
// or ctx ends. listened reports whether it got as far as listening.
func (s *Store) listenOnce(ctx context.Context, wake func()) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return false, wrapErr("listen", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, s.q.listen); err != nil {
		return false, wrapErr("listen", err)
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, wrapErr("listen", err)
		}
		wake()
	}
}
