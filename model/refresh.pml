/*
 * refresh.pml: a Promela model of latch's refresh transaction (source.go,
 * Source.redeem), login (auth_login.go, storekit.Put) and logout
 * (auth_logout.go, logoutOne), run by N processes that share one stored
 * credential, against a server that rotates refresh tokens and revokes a
 * family on reuse (RFC 9700 §4.14.2), with or without a grace period.
 * A process that finds the lock held may first wait for it to be let go
 * without taking it and adopt what the holder saved (latch.Waiter).
 * Any process may crash (SIGKILL) between any two steps; the kernel then
 * releases its lock. Any answer to a grant may be lost after the server
 * processed it.
 *
 * Checked exhaustively by model/check.sh:
 *  (a) a refresh token is presented twice only after an answer to it was
 *      lost (the single retry of item 12, or a process that died between
 *      sending and saving);
 *  (b) the store is never torn;
 *  (c) a logged-out credential never comes back;
 *  (d) reuse is detected (the session lost) only at a strict server, and
 *      only after a lost answer.
 * Break switches (-D...=1) remove one safeguard each, to show that spin
 * finds what it guards against.
 */
#ifndef N
#define N 3      /* processes */
#endif
#ifndef OPS
#define OPS 2      /* operations per process */
#endif
#define MAXT 12    /* token ids: 1 + N*OPS*2 fit */

#ifndef GRACE
#define GRACE 0
#endif
#ifndef BREAK_REREAD
#define BREAK_REREAD 0   /* skip the re-read under the lock */
#endif
#ifndef BREAK_ATOMIC
#define BREAK_ATOMIC 0   /* write the set in two steps, in place */
#endif
#ifndef BREAK_LOGOUT_LOCK
#define BREAK_LOGOUT_LOCK 0 /* logout deletes without the lock or the compare */
#endif
#ifndef LEASE
#define LEASE 0          /* the lock is a lease that can run out while held (redisstore) */
#endif
#ifndef BREAK_NO_WAIT
#define BREAK_NO_WAIT 0  /* an interrupted process exits before the answer is saved */
#endif
#ifndef BREAK_WAITER_REDEEMS
#define BREAK_WAITER_REDEEMS 0 /* a waiter that finds no new set redeems without the lock */
#endif

/* The server. Token ids are small numbers; a family is named by the id
 * of its first refresh token, which is also the login's lineage. */
byte next = 1;
byte fam[MAXT];
byte genOf[MAXT];
bool spent[MAXT];      /* rotated */
bool famDead[MAXT];    /* revoked: by reuse detection or by a logout */
byte presents[MAXT];   /* times a grant with it reached the server */
bool lostAns[MAXT];    /* an answer to it was lost */
bool anyLost = false;

/* The store: one credential (refresh token, generation, lineage). */
byte srt = 0;
byte sgen = 0;
byte slin = 0;
bool writing = false;  /* a two-step write is half done (BREAK_ATOMIC) */
bool loggedOut[MAXT];  /* lineages a logout removed */

/* The kernel lock: holder's id + 1, or 0. */
byte lock = 0;

inline mint(t, f, g) {
	t = next; next++;
	fam[t] = f; genOf[t] = g
}

inline write(t) {
#if BREAK_ATOMIC
	writing = true; srt = t;
	if
	:: skip
	:: crashed = true
	fi;
	if
	:: !crashed -> sgen = genOf[t]; slin = fam[t]; writing = false
	:: else -> skip
	fi
#else
	atomic { srt = t; sgen = genOf[t]; slin = fam[t] }
#endif
}

/* A crash point: the process may die here. */
#define CRASH if :: skip :: crashed = true; goto crash fi
/* With LEASE, a holder frozen past its lease loses the lock without
 * knowing it (Redis SET NX PX); a connection-bound lock (PostgreSQL's
 * advisory lock, the kernel's flock) cannot run out this way. */
#define EXPIRE if :: LEASE && lock == me + 1 -> lock = 0 :: skip fi

proctype Proc(byte me) {
	byte ops = 0, stale, base, ans, t;
	bool crashed, sent, retried;
	do
	:: ops == OPS -> break
	:: ops < OPS ->
		ops++; crashed = false; sent = false; retried = false; base = 0; ans = 0;
		stale = srt; /* what the process loaded before it took the lock */
		if
		:: goto refresh
		:: goto login
		:: goto logout
		fi;

refresh:
		if                                           /* W1 Waiter.Wait: held? then wait */
		:: atomic { lock != 0 } ->                   /* for it to be let go, not taking it */
			atomic { lock == 0 };
			CRASH;
			base = srt;                              /* W2 Store.Load without the lock */
			if
			:: base != 0 && base != stale && stale != 0 -> goto done /* W3 a sibling saved: adopt */
#if BREAK_WAITER_REDEEMS
			:: base != 0 -> goto send
#endif
			:: else -> skip
			fi
		:: else -> skip
		fi;
		atomic { lock == 0 -> lock = me + 1 }       /* R1 lock.Lock */
		CRASH;
		EXPIRE;
#if BREAK_REREAD
		base = stale;
#else
		base = srt;                                  /* R2 Store.Load under the lock */
#endif
		if
		:: base == 0 -> goto release                 /* R4 nothing to refresh: login required */
		:: base != 0 && base != stale && stale != 0 -> goto release /* R3 a sibling rotated: adopt */
		:: else -> skip
		fi;
		CRASH;
		EXPIRE;
send:
		atomic {                                     /* R5 Config.Refresh: the server */
			assert(presents[base] == 0 || lostAns[base]);            /* (a) */
			presents[base]++;
			sent = true;
			if
			:: famDead[fam[base]] -> ans = 0
			:: !famDead[fam[base]] && spent[base] && !GRACE ->
				assert(anyLost);                                    /* (d) */
				famDead[fam[base]] = true; ans = 0
			:: !famDead[fam[base]] && (!spent[base] || GRACE) ->
				spent[base] = true; mint(ans, fam[base], genOf[base] + 1)
			fi
		}
		if
		:: ans != 0 -> skip
		:: ans != 0 ->                               /* the answer is lost */
			lostAns[base] = true; anyLost = true;
			if
			:: !retried -> retried = true; goto send /* R6 retry once, at once */
			:: retried -> goto release               /* AnswerLostError: kept */
			fi
		:: ans == 0 -> skip
		fi;
#if BREAK_NO_WAIT
		if
		:: skip
		:: goto release /* exits on Ctrl-C with the answer unsaved: latch's fault, not a lost answer */
		fi;
#endif
		CRASH;
		if
		:: ans != 0 ->                               /* R7 Store.Save(base, nt): compare-and-swap */
			if
			:: srt == base -> write(ans)
			:: else -> skip
			fi;
			if
			:: crashed -> goto crash
			:: else -> skip
			fi
		:: ans == 0 ->                               /* R8 forget: only if unchanged */
			atomic { if :: srt == base -> srt = 0; sgen = 0; slin = 0 :: else -> skip fi }
		fi;
		goto release;

login:
		atomic { lock == 0 -> lock = me + 1 }       /* I1 storekit.Put: lock.Lock */
		CRASH;
		atomic { mint(t, next, 0); fam[t] = t }      /* I2 a new family; the code exchange */
		write(t);                                    /* I3 Save over what is stored */
		if
		:: crashed -> goto crash
		:: else -> goto release
		fi;

logout:
#if !BREAK_LOGOUT_LOCK
		atomic { lock == 0 -> lock = me + 1 }       /* O1 storekit.Update: lock.Lock */
		CRASH;
		base = srt;                                  /* O2 Load under the lock */
		atomic { if :: srt == base && base != 0 -> loggedOut[slin] = true; srt = 0; sgen = 0; slin = 0 :: else -> skip fi } /* O3 Delete(base) */
		lock = 0;
#else
		base = stale;                                /* the old way: no lock, no compare */
		atomic { if :: base != 0 -> loggedOut[fam[base]] = true :: else -> skip fi; srt = 0; sgen = 0; slin = 0 }
#endif
		CRASH;
		if                                           /* O4 Revoke: RFC 7009, the family */
		:: base != 0 -> famDead[fam[base]] = true
		:: else -> skip
		fi;
		goto done;

crash:
		if
		:: sent && ans != 0 -> lostAns[base] = true; anyLost = true /* died with the answer unsaved */
		:: else -> skip
		fi;
		writing = false;
release:
		if
		:: lock == me + 1 -> lock = 0
		:: else -> skip
		fi;
done:
		skip
	od
}

/* The invariants, checked in every reachable state. */
active proctype Monitor() {
	assert(writing || srt == 0 || (genOf[srt] == sgen && fam[srt] == slin)); /* (b) */
	assert(slin == 0 || !loggedOut[slin]);                                    /* (c) */
}

init {
	atomic {
		byte i;
		/* logged in: token 1 of family 1 is stored */
		next = 2; fam[1] = 1; genOf[1] = 0; srt = 1; sgen = 0; slin = 1;
		for (i : 0 .. N - 1) {
			run Proc(i)
		}
	}
}
