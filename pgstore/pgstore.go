// Package pgstore is a credential.Store on PostgreSQL, for a fleet of machines
// that share one login: one row per credential, sealed with AES-GCM, a
// compare-and-swap save inside a transaction that locks the row, and a
// Locker on a transaction advisory lock held by an open transaction on a
// connection of its own, so that a holder that dies or loses its
// connection releases it at once. A transaction holds the same server
// connection behind a pooler in session and in transaction mode
// (pgbouncer's pool_mode = transaction), where a session advisory lock
// would stay behind on a server connection that the next client is
// handed.
//
// The table, created when missing:
//
//	CREATE TABLE IF NOT EXISTS latch_credentials (
//	    issuer     text        NOT NULL,
//	    client_id  text        NOT NULL,
//	    account    text        NOT NULL,
//	    lineage    text        NOT NULL,
//	    generation bigint      NOT NULL,
//	    sealed     bytea       NOT NULL,
//	    updated_at timestamptz NOT NULL DEFAULT now(),
//	    PRIMARY KEY (issuer, client_id, account)
//	);
//	CREATE TABLE IF NOT EXISTS latch_credentials_redeeming (
//	    issuer       text        NOT NULL,
//	    client_id    text        NOT NULL,
//	    account      text        NOT NULL,
//	    owner        text        NOT NULL,
//	    server_start timestamptz NOT NULL,
//	    until        timestamptz NOT NULL,
//	    PRIMARY KEY (issuer, client_id, account)
//	);
//
// The second table is a fence for what an advisory lock cannot survive:
// its connection cut mid-refresh (a database restart, pg_terminate_backend,
// idle_in_transaction_session_timeout, a TCP reset). Just before a holder
// spends a refresh token (CheckWrite) it records that it is redeeming,
// until its refresh deadline, and commits the record in the lock's
// transaction (which ends the lock: the record holds the others from
// then on, and a process needs one connection only); its save (over any
// connection, compare-and-swap on the set it read) removes the record,
// and so does its unlock. A process that takes the lock and
// finds another's record before its deadline waits for that save instead
// of redeeming the same refresh token again: the first holder may be
// alive, with the rotated set in hand. docs/fleet.md has the design.
package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchdev/latch/credential"
	"github.com/latchdev/latch/fleet"
	"github.com/latchdev/latch/internal/redact"
	"github.com/latchdev/latch/sealed"
	"github.com/latchdev/latch/storekit"
)

// DefaultTable is the table credentials live in; the fence table is
// its name with FenceSuffix.
const DefaultTable = "latch_credentials"

// FenceSuffix names the fence table after the credential table.
const FenceSuffix = "_redeeming"

// FenceTTL is how long a recorded redeem is waited for by the next lock
// holder when the redeeming context has no deadline (a Source's always
// has one: its refresh timeout; the record then lasts until that deadline
// plus credential.DefaultTimeouts.Save). Past it, the first holder is taken to be gone.
var FenceTTL = credential.DefaultTimeouts.Refresh + credential.DefaultTimeouts.Save

// Options configure Open.
type Options struct {
	// Key is the 32-byte AES-256 key the token sets are sealed with.
	// Without one, Open refuses unless Plaintext is set.
	Key       []byte
	Plaintext bool
	// Table defaults to DefaultTable; it must be a plain identifier.
	Table string
	// LockTimeout bounds Lock; 0 means credential.DefaultTimeouts.Lock.
	LockTimeout time.Duration
}

// Store is a credential.Store, credential.Locker and credential.Lister on PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	box     *sealed.Box
	table   string
	fence   string // the fence table
	owner   string // this Store's name in the fence
	timeout time.Duration
	where   string // the server, for messages, without a password
	user    string

	// held are the locks this process holds. Work on a held key goes
	// through its lock's connection, one statement at a time, so a
	// process uses one connection: a second would wait for a pooler's
	// server connection that the lock's waiters hold (pgbouncer's
	// default_pool_size is 20).
	mu     sync.Mutex
	held   map[credential.Key]*heldConn
	locals map[credential.Key]chan struct{} // Lock within this process
}

type heldConn struct {
	mu     sync.Mutex
	conn   *pgxpool.Conn
	inTx   bool // the lock's transaction is open: the lock is held
	fenced bool // this holder committed a redeem record (CheckWrite)
}

// with runs fn on k's lock connection when this process holds it and
// the connection is open (inTx says whether the lock's transaction is),
// else on a pooled connection.
func (s *Store) with(k credential.Key, fn func(q querier, h *heldConn) error) error {
	s.mu.Lock()
	h := s.held[k]
	s.mu.Unlock()
	if h == nil {
		return fn(s.pool, nil)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn.Conn().IsClosed() {
		// The connection was cut: the lock is gone with it, and a save
		// after a redeem must still land.
		return fn(s.pool, nil)
	}
	return fn(h.conn, h)
}

// querier is what a pool and a connection both do.
type querier interface {
	execer
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// execer is what a querier and a transaction both do.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

var (
	_ credential.Store        = (*Store)(nil)
	_ credential.Locker       = (*Store)(nil)
	_ credential.Waiter       = (*Store)(nil)
	_ credential.Lister       = (*Store)(nil)
	_ credential.WriteChecker = (*Store)(nil)
)

// Redacted returns connString as it may be shown: scheme, user, host,
// port, path and the harmless query parameters only (redact.StoreURL).
func Redacted(connString string) string { return redact.StoreURL(connString, "postgres") }

// Open connects to PostgreSQL at connString (a postgres:// URL) and
// creates the table when missing. Errors never show the password.
func Open(ctx context.Context, connString string, o Options) (*Store, error) {
	where := Redacted(connString)
	if o.Key == nil && !o.Plaintext {
		return nil, fmt.Errorf("credential store %s: no store key: set one (32 random bytes in a 0600 file), or accept plaintext tokens in the database explicitly", where)
	}
	box, err := sealed.New(o.Key)
	if err != nil {
		return nil, err
	}
	table := o.Table
	if table == "" {
		table = DefaultTable
	}
	if !identifier(table + FenceSuffix) {
		return nil, fmt.Errorf("credential store %s: table %q is not a plain identifier of at most %d characters", where, table, 63-len(FenceSuffix))
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("credential store %s: bad connection string", where)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	// One round trip per statement, not a prepare and then an execute:
	// a command runs each statement once, on a fresh connection.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, (&Store{where: where, user: cfg.ConnConfig.User}).err("connect", err)
	}
	s := &Store{user: cfg.ConnConfig.User, pool: pool, box: box, table: table, fence: table + FenceSuffix, owner: rand.Text(),
		timeout: o.LockTimeout, where: where, held: map[credential.Key]*heldConn{}, locals: map[credential.Key]chan struct{}{}}
	if s.timeout <= 0 {
		s.timeout = credential.DefaultTimeouts.Lock
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL`, s.table, s.fence).Scan(&exists); err != nil {
		pool.Close()
		return nil, s.err("connect", err)
	}
	if exists {
		return s, nil
	}
	for _, ddl := range []string{`CREATE TABLE IF NOT EXISTS ` + s.table + ` (
		issuer text NOT NULL, client_id text NOT NULL, account text NOT NULL,
		lineage text NOT NULL, generation bigint NOT NULL, sealed bytea NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (issuer, client_id, account))`, `CREATE TABLE IF NOT EXISTS ` + s.fence + ` (
		issuer text NOT NULL, client_id text NOT NULL, account text NOT NULL,
		owner text NOT NULL, server_start timestamptz NOT NULL, until timestamptz NOT NULL,
		PRIMARY KEY (issuer, client_id, account))`} {
		if _, err := pool.Exec(ctx, ddl); err != nil {
			var pe *pgconn.PgError
			// Two processes creating it at once: one wins, the other sees it.
			if !errors.As(err, &pe) || pe.Code != "23505" && pe.Code != "42P07" {
				pool.Close()
				return nil, s.err("create table", err)
			}
		}
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// String names the store without a password.
func (s *Store) String() string { return s.where }

func identifier(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// UnavailableError is a database that cannot be reached or used now; it
// matches credential.ErrStoreUnavailable (transient: nothing is redeemed).
type UnavailableError struct {
	Where string
	Op    string
	Err   error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("credential store %s: %s: %v", e.Where, e.Op, e.Err)
}

func (e *UnavailableError) Unwrap() []error { return []error{credential.ErrStoreUnavailable, e.Err} }

// AuthError is PostgreSQL refusing the password (SQLSTATE class 28):
// a person must fix it; trying again cannot help.
type AuthError = fleet.AuthError

func (s *Store) err(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("credential store %s: %s: %w", s.where, op, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "25006" { // read_only_sql_transaction
		return fmt.Errorf("credential store %s: %s: %w", s.where, op, credential.ErrStoreReadOnly)
	}
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "28") { // invalid_authorization_specification
		return &AuthError{Server: "PostgreSQL", User: s.user, Where: s.where, Err: pe}
	}
	return &UnavailableError{Where: s.where, Op: op, Err: err}
}

// Load returns k's set.
func (s *Store) Load(ctx context.Context, k credential.Key) (*credential.Token, error) {
	var v []byte
	err := s.with(k, func(q querier, _ *heldConn) error {
		return q.QueryRow(ctx, `SELECT sealed FROM `+s.table+` WHERE issuer = $1 AND client_id = $2 AND account = $3`,
			k.Issuer, k.ClientID, k.Account).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load credential %s: %w", k, credential.ErrNotFound)
	}
	if err != nil {
		return nil, s.err("load", err)
	}
	return s.box.Open(k, v)
}

// Save writes t for k if k still holds old (credential.Store), in one
// transaction that locks the row it compares.
func (s *Store) Save(ctx context.Context, k credential.Key, old, t *credential.Token) error {
	v, err := s.box.Seal(k, t)
	if err != nil {
		return err
	}
	return s.compareAndWrite(ctx, k, old, t, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+s.table+` (issuer, client_id, account, lineage, generation, sealed, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, now())
			ON CONFLICT (issuer, client_id, account) DO UPDATE
			SET lineage = EXCLUDED.lineage, generation = EXCLUDED.generation, sealed = EXCLUDED.sealed, updated_at = now()`,
			k.Issuer, k.ClientID, k.Account, t.Lineage, int64(t.Generation), v)
		if err != nil {
			return err
		}
		return s.clearFence(ctx, tx, k)
	})
}

// clearFence removes k's redeem record: the credential has moved on.
func (s *Store) clearFence(ctx context.Context, q execer, k credential.Key) error {
	_, err := q.Exec(ctx, `DELETE FROM `+s.fence+` WHERE issuer = $1 AND client_id = $2 AND account = $3`, k.Issuer, k.ClientID, k.Account)
	return err
}

// Delete removes k's set if k still holds old.
func (s *Store) Delete(ctx context.Context, k credential.Key, old *credential.Token) error {
	return s.compareAndWrite(ctx, k, old, nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM `+s.table+` WHERE issuer = $1 AND client_id = $2 AND account = $3`,
			k.Issuer, k.ClientID, k.Account)
		if err != nil {
			return err
		}
		return s.clearFence(ctx, tx, k)
	})
}

// compareAndWrite runs one compare-and-swap on k's lock connection when
// this process holds it (inside the lock's transaction, when that is
// still open: its commit ends the lock), else on a pooled connection,
// tried again while the database is unreachable (fleet.Retry).
func (s *Store) compareAndWrite(ctx context.Context, k credential.Key, old, next *credential.Token, write func(pgx.Tx) error) error {
	return fleet.Retry(ctx, func(again bool) error {
		return s.with(k, func(q querier, h *heldConn) error {
			if h != nil && h.inTx {
				// BEGIN inside the lock's transaction only warns; the
				// commit or rollback below ends both.
				defer func() { h.inTx = false }()
			}
			return s.tryOn(ctx, q, k, old, next, again, write)
		})
	})
}

func (s *Store) tryOn(ctx context.Context, q querier, k credential.Key, old, next *credential.Token, again bool, write func(pgx.Tx) error) error {
	tx, err := q.Begin(ctx)
	if err != nil {
		return s.err("begin", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var v []byte
	var cur *credential.Token
	err = tx.QueryRow(ctx, `SELECT sealed FROM `+s.table+` WHERE issuer = $1 AND client_id = $2 AND account = $3 FOR UPDATE`,
		k.Issuer, k.ClientID, k.Account).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = credential.ErrNotFound
	case err != nil:
		return s.err("load for update", err)
	default:
		cur, err = s.box.Open(k, v)
	}
	if again && fleet.Landed(cur, err, next) {
		return nil // the try before landed
	}
	if err := storekit.CompareStored(k, cur, err, old); err != nil {
		return err
	}
	if err := write(tx); err != nil {
		return s.err("write", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.err("commit", err)
	}
	return nil
}

// CheckWrite reports whether a save could happen now — the database is
// reachable and not read-only, and this process still holds k's lock —
// by writing what a Source calls it for: the record that k's refresh
// token is about to be redeemed, until ctx's deadline plus
// credential.DefaultTimeouts.Save (the fence; see the package doc), which k's save
// removes. It commits the record in the lock's transaction, which ends
// the lock: from then on the record keeps the others waiting, and the
// save needs no second connection.
func (s *Store) CheckWrite(ctx context.Context, k credential.Key, _ int) error {
	ttl := FenceTTL
	if d, ok := ctx.Deadline(); ok {
		ttl = time.Until(d) + credential.DefaultTimeouts.Save
	}
	s.mu.Lock()
	h := s.held[k]
	s.mu.Unlock()
	q := querier(s.pool)
	if h != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.inTx || h.conn.Conn().IsClosed() {
			// Only a save may go on without the lock.
			return fmt.Errorf("credential store %s: the lock was lost with its connection (was it cut, or did the database restart?): %w", s.where, credential.ErrStoreUnavailable)
		}
		q = h.conn
	}
	_, err := q.Exec(ctx, `INSERT INTO `+s.fence+` (issuer, client_id, account, owner, server_start, until)
		VALUES ($1, $2, $3, $4, pg_postmaster_start_time(), clock_timestamp() + make_interval(secs => $5))
		ON CONFLICT (issuer, client_id, account) DO UPDATE
		SET owner = EXCLUDED.owner, server_start = EXCLUDED.server_start, until = EXCLUDED.until`,
		k.Issuer, k.ClientID, k.Account, s.owner, ttl.Seconds())
	if err == nil && h != nil {
		_, err = h.conn.Exec(ctx, `COMMIT`)
		h.inTx = false
	}
	if err != nil {
		return s.err("check write", err)
	}
	if h != nil {
		h.fenced = true
	}
	return nil
}

// awaitFence waits, holding k's lock, while k carries another holder's
// redeem not yet past its deadline: that holder lost the lock with its
// connection, and may still save the set it redeemed.
func (s *Store) awaitFence(ctx context.Context, q querier, k credential.Key) error {
	for {
		var pending bool
		// clock_timestamp: now() stands still in the lock's transaction.
		err := q.QueryRow(ctx, `SELECT owner <> $4 AND until > clock_timestamp() FROM `+s.fence+`
			WHERE issuer = $1 AND client_id = $2 AND account = $3`, k.Issuer, k.ClientID, k.Account, s.owner).Scan(&pending)
		switch {
		case errors.Is(err, pgx.ErrNoRows) || err == nil && !pending:
			return nil
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitPoll is how often Wait looks again.
const waitPoll = 10 * time.Millisecond

// Wait waits, without taking k's lock, until no process (nor another
// caller in this one) holds it and no other process's redeem is in
// flight (the fence), at most the lock timeout (credential.Waiter). Each look is one statement that tries a shared
// transaction advisory lock and lets it go with the statement, so it
// needs no second connection and works through a pooler in either mode.
// It reports whether it waited.
func (s *Store) Wait(ctx context.Context, k credential.Key) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sem := s.local(k)
	for waited := false; ; waited = true {
		var free bool
		select {
		case sem <- struct{}{}: // no holder in this process
			<-sem
		default:
			t := time.NewTimer(waitPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				if ctx.Err() == context.DeadlineExceeded {
					return true, fmt.Errorf("lock credential %s in %s: held in this process for %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
				}
				return true, ctx.Err()
			case <-t.C:
				continue
			}
		}
		err := s.pool.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock_shared($4) AND NOT EXISTS (SELECT 1 FROM `+s.fence+`
			WHERE issuer = $1 AND client_id = $2 AND account = $3 AND owner <> $5 AND until > clock_timestamp())`,
			k.Issuer, k.ClientID, k.Account, lockID(s.table, k), s.owner).Scan(&free)
		if err == nil && free {
			return waited, nil
		}
		if err == nil {
			t := time.NewTimer(waitPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				err = ctx.Err()
			case <-t.C:
				continue
			}
		}
		if ctx.Err() == context.DeadlineExceeded {
			return waited, fmt.Errorf("lock credential %s in %s: held by another process for %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
		}
		if ctx.Err() != nil {
			return waited, ctx.Err()
		}
		return waited, s.err("wait for lock", err)
	}
}

// List returns every stored key.
func (s *Store) List(ctx context.Context) ([]credential.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT issuer, client_id, account FROM `+s.table+` ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, s.err("list", err)
	}
	defer rows.Close()
	var keys []credential.Key
	for rows.Next() {
		var k credential.Key
		if err := rows.Scan(&k.Issuer, &k.ClientID, &k.Account); err != nil {
			return nil, s.err("list", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.err("list", err)
	}
	return keys, nil
}

// lockID is k's advisory lock number.
func lockID(table string, k credential.Key) int64 {
	h := fnv.New64a()
	h.Write([]byte("latch\x00" + table + "\x00" + k.Issuer + "\x00" + k.ClientID + "\x00" + k.Account))
	return int64(h.Sum64())
}

// lockWait is how long one wait for the advisory lock lasts before the
// waiter lets its server connection go for a moment (a pooler in
// transaction mode hands it to the next client, the holder included)
// and waits again.
const lockWait = 100 * time.Millisecond

// Lock takes k's transaction advisory lock in a transaction of its own on
// a connection of its own, open until unlock or until the holder's first
// commit (CheckWrite, Save or Delete): PostgreSQL releases it when that
// transaction or its connection ends, so a holder that dies frees it at
// once, and one that is only frozen keeps it (no lease to run out). It
// then waits while another holder's redeem is in flight (awaitFence). In
// this process, k's lock is held until unlock: the redeem record names
// this Store, so it cannot hold back this Store's other callers. It
// waits at most the lock timeout in all.
func (s *Store) Lock(ctx context.Context, k credential.Key) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sem := s.local(k)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("lock credential %s in %s: held in this process for %s: %w", k, s.where, s.timeout, credential.ErrLockTimeout)
		}
		return nil, ctx.Err()
	}
	unlock, err := s.lock(ctx, k)
	if err != nil {
		<-sem
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			unlock()
			<-sem
		})
	}, nil
}

// local is k's lock within this process.
func (s *Store) local(k credential.Key) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.locals[k]
	if c == nil {
		c = make(chan struct{}, 1)
		s.locals[k] = c
	}
	return c
}

// lock is Lock's part in the database.
func (s *Store) lock(ctx context.Context, k credential.Key) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("lock credential %s in %s: %w", k, s.where, credential.ErrLockTimeout)
		}
		return nil, s.err("lock", err)
	}
	// fail closes the connection, which ends any lock it holds, and says
	// what the wait ran out on.
	fail := func(err error, waitedFor string) error {
		_ = conn.Hijack().Close(context.Background())
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			return fmt.Errorf("lock credential %s in %s: %s %s: %w", k, s.where, waitedFor, s.timeout, credential.ErrLockTimeout)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return s.err("lock", err)
	}
	// A blocking pg_advisory_xact_lock wakes the moment the holder lets
	// go; lock_timeout ends it after lockWait. The ROLLBACK that follows
	// is a query of its own: only a transaction's end lets a pooler in
	// transaction mode hand the server connection on.
	wait := fmt.Sprintf(`BEGIN; SET LOCAL lock_timeout = %d; SELECT pg_advisory_xact_lock(%d)`, lockWait.Milliseconds(), lockID(s.table, k))
	for {
		_, err := conn.Exec(ctx, wait)
		var pe *pgconn.PgError
		if err == nil {
			break
		}
		if !errors.As(err, &pe) || pe.Code != "55P03" { // lock_not_available
			return nil, fail(err, "held by another process for")
		}
		if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
			return nil, fail(err, "held by another process for")
		}
	}
	if err := s.awaitFence(ctx, conn, k); err != nil {
		return nil, fail(err, "another process lost the lock mid-refresh; its save did not come within")
	}
	h := &heldConn{conn: conn, inTx: true}
	s.mu.Lock()
	s.held[k] = h
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.held, k)
		s.mu.Unlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q := querier(conn)
		if conn.Conn().IsClosed() {
			q = s.pool
		}
		if h.fenced {
			// A redeem that did not end in a save (it failed, or the set
			// was refused): no one is redeeming any more.
			_, _ = q.Exec(uctx, `DELETE FROM `+s.fence+` WHERE issuer = $1 AND client_id = $2 AND account = $3 AND owner = $4`,
				k.Issuer, k.ClientID, k.Account, s.owner)
		}
		if h.inTx {
			if _, err := conn.Exec(uctx, `ROLLBACK`); err != nil {
				// Closing the connection releases the lock for certain.
				_ = conn.Hijack().Close(uctx)
				return
			}
		}
		if conn.Conn().IsClosed() {
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}, nil
}
