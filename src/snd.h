/* snd.h: the sender's core loop, and the backends it drives. */
#ifndef DLR_SND_H
#define DLR_SND_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "retry.h"

struct resolve;

/* What sender_finish is told about one attempt (snd_outcome_name). */
enum snd_outcome {
	SND_DELIVERED,	/* 2xx: the notification is done */
	SND_RETRY,	/* failed; try again after retry_seconds */
	SND_DEAD,	/* failed, no retries left: dead letter */
	SND_GONE,	/* 410: dead, and the webhook is disabled */
	SND_OUTCOME__MAX
};

#define SND_EXCERPT_MAX	256	/* bytes of response body kept */

/*
 * One claimed notification and what became of the attempt. The database
 * backend fills the claim part; the core and the HTTP backend the rest.
 * Every pointer is owned by the job (snd_job_free).
 */
struct snd_job {
	/* From sender_claim. */
	char		*id;		/* = webhook-id */
	int		 attempt;	/* 1-based; the fencing token */
	char		*webhook_id;
	char		*url;
	char		*payload;
	char		*secret;
	char		*prev_secret;	/* NULL unless rotating */

	/* The attempt. */
	char		*host;		/* the URL's host, for the log */
	char		*pin;		/* CURLOPT_RESOLVE, or NULL */
	char		*signature;	/* webhook-signature */
	long long	 timestamp;	/* webhook-timestamp */
	double		 started;	/* wall clock, unix seconds */
	double		 mono_start;	/* monotonic, for duration */
	double		 claimed;	/* monotonic, at the claim */
	long		 http_status;	/* 0: no HTTP response */
	char		*error;		/* what failed, or NULL */
	char		 excerpt[SND_EXCERPT_MAX + 1];
	size_t		 excerpt_len;
	char		*retry_after;	/* header value, or NULL */
	int		 duration_ms;
	int		 host_slot;	/* counted in its host's in-flight */

	/* The verdict. */
	enum snd_outcome outcome;
	double		 retry_seconds;	/* SND_RETRY only */

	struct snd_job	*next;		/* backends' lists */
};

struct snd_job	*snd_job_new(void);
void		 snd_job_free(struct snd_job *);

/* A FIFO of finished jobs, as both HTTP backends hand them back. */
struct snd_jobq {
	struct snd_job	*head, *tail;
};

void		 snd_jobq_push(struct snd_jobq *, struct snd_job *);
/* The oldest job, or NULL when the queue is empty. */
struct snd_job	*snd_jobq_pop(struct snd_jobq *);
const char	*snd_outcome_name(enum snd_outcome);

/* snd_db_ops.finish results other than 0. */
#define SND_DB_LOST	(-1)	/* connection lost: keep them, retry */
#define SND_DB_REJECTED	(-2)	/* the database refused them: drop */

/*
 * The database side (snd_pg.c in production). Every call is autocommit:
 * nothing is left open across the network I/O between them.
 */
struct snd_db_ops {
	/* Connects and LISTENs for webhook changes (and for new events
	 * when following); 0, or -1 (logged). */
	int	(*connect)(void *);
	int	(*connected)(void *);
	/* Starts claiming up to batch due notifications under a lease of
	 * lease seconds, none of the nskip webhooks in skip, at most
	 * per_webhook of one webhook (0: any number); the loop goes on
	 * meanwhile, and calls nothing else on this connection but
	 * notified() until claim_result is over. 0, or -1 (logged). */
	int	(*claim_start)(void *, int batch, int lease,
		    const char *const *skip, size_t nskip, int per_webhook);
	/* The socket to poll while a claim runs, or -1. */
	int	(*claim_fd)(void *);
	/* The claim's rows, prepended to *list: their count; -2 while it
	 * runs (block: wait for it instead); -1 (logged) on error. */
	int	(*claim_result)(void *, int block, struct snd_job **list);
	/* Starts recording n attempts in one call, which runs while the
	 * loop goes on (one at a time): 0, or an SND_DB_ code. */
	int	(*finish_start)(void *, struct snd_job *const *jobs, size_t n);
	/* The socket to poll while a finish runs, or -1. */
	int	(*finish_fd)(void *);
	/* How the finish started last went: 1 while it runs (block: wait
	 * for it instead), 0 when recorded or none was started, or an
	 * SND_DB_ code. */
	int	(*finish_result)(void *, int block);
	/* Gives back n claimed jobs that were never attempted (due again
	 * now, the attempt not counted), on the claim's connection while
	 * no claim runs; blocks. How many were given back, or -1 (logged;
	 * they wait for their lease then). */
	int	(*release)(void *, struct snd_job *const *jobs, size_t n);
	/* Seconds until the earliest pending notification is due: 0 with
	 * *secs (<= 0 means now), 1 when none is pending, -1 on error. */
	int	(*next_due)(void *, double *secs);
	/* The socket to poll for NOTIFY, or -1. */
	int	(*fd)(void *);
	/* Reads the socket: how many notifications of new events, or -1
	 * if lost. Webhook changes read meanwhile are kept for changed(). */
	int	(*notified)(void *);
	/* The webhooks changed (PUT, DELETE, rotation, disabled) among the
	 * notifications read so far, each once: their ids, *n of them, the
	 * array and strings the caller's; *all set when more changed than
	 * could be kept (then any webhook may have). */
	char	**(*changed)(void *, size_t *n, int *all);
	void	(*free)(void *);
};

/* The HTTP side (snd_http.c in production, a fake in the tests). */
struct snd_http_ops {
	/* Starts the attempt; the job comes back from done() when over. */
	void		 (*start)(void *, struct snd_job *);
	/* Drives the transfers for up to timeout_ms, returning early when
	 * one ends or one of fds is readable (revents set); -1 if broken. */
	int		 (*wait)(void *, struct pollfd *fds, int nfds,
			    int timeout_ms);
	/* A finished job, or NULL. */
	struct snd_job	*(*done)(void *);
	void		 (*free)(void *);
};

struct snd_config {
	int		 batch;		/* most rows per claim */
	int		 concurrency;	/* most transfers in flight */
	int		 per_host;	/* most of them to one host; 0: no cap */
	int		 timeout;	/* seconds per attempt */
	int		 lease;		/* seconds a claim holds a row */
	int		 max_seconds;	/* --once: stop claiming then */
	int		 follow;	/* daemon: wait for more work */
	int		 dry_run;	/* no HTTP: all delivered */
	struct retry_sched sched;
};

struct snd_stats {
	unsigned long	 delivered;
	unsigned long	 failed;	/* retried + dead */
	unsigned long	 retried;
	unsigned long	 dead;		/* 410 Gone included */
	unsigned long	 released;	/* claimed, given back unattempted */
	unsigned long	 abandoned;	/* claimed, never attempted, left to
					   the lease */
	unsigned long	 unrecorded;	/* attempted, never finished */
};

/* Everything the loop runs with; the caller owns each part. */
struct snd_loop {
	struct snd_config		 cfg;
	const struct snd_db_ops		*db_ops;
	void				*db;
	const struct snd_http_ops	*http_ops;
	void				*http;
	struct resolve			*resolver;
	/* Set by the signal handler: 1 finishes in-flight work and
	 * exits, 2 exits at once; wake_fd (or -1) is the self-pipe it
	 * writes to. */
	volatile sig_atomic_t		*stop;
	int				 wake_fd;
	/* Jitter draws in [0, 1]: retry_uniform unless a test fixes it. */
	double				(*uniform)(void);
	/* Monotonic seconds for leases, deadlines and --max-seconds:
	 * CLOCK_MONOTONIC when NULL; a test's own clock otherwise. */
	double				(*mono)(void);
	struct snd_stats		 stats;
};

/*
 * Claims, delivers and finishes until, with --once, nothing is due or
 * max_seconds are spent, or until *stop. Returns 0, or 1 when the run
 * failed (no database, results that could not be recorded).
 */
int	 snd_run(struct snd_loop *);

/*
 * Gives a finished attempt its verdict: outcome, retry_seconds, and the
 * error text for sender_finish ("HTTP 500", "timeout after 15 s", ...).
 * uniform draws the jitter (for a retry only: a draw costs a RAND_bytes);
 * now (unix seconds) dates a Retry-After.
 */
void	 snd_classify(struct snd_job *, const struct retry_sched *,
	    double (*uniform)(void), time_t now);

/* Makes an excerpt fit for a text column: invalid UTF-8, a cut-off
 * trailing sequence and control characters are replaced or dropped. */
void	 snd_excerpt_clean(char *s, size_t *len);

/* The null HTTP backend of --dry-run: every attempt is a 200 at once. */
void	*snd_http_null_new(void);
extern const struct snd_http_ops snd_http_null_ops;

/*
 * The libpq backend (snd_pg.c). conninfo may be NULL or empty (the PG*
 * environment then applies); listen subscribes to dlrhook_pending.
 */
void	*snd_pg_new(const char *conninfo, int listen);
extern const struct snd_db_ops snd_pg_ops;

/* The libcurl backend (snd_http.c). */
struct snd_http_config {
	int		 concurrency;
	int		 timeout;		/* seconds, whole attempt */
	int		 connect_timeout;	/* seconds */
	int		 allow_private;		/* no SSRF refusal */
	const char	*cafile;		/* CA to add, or NULL */
};
/* NULL (logged) when libcurl or the CA file cannot be set up. */
void	*snd_http_new(const struct snd_http_config *);
extern const struct snd_http_ops snd_http_curl_ops;

#endif
