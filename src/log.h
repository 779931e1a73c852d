/* log.h: one-line log messages on stderr, which the web server or cron keeps. */
#ifndef DLR_LOG_H
#define DLR_LOG_H

void	log_init(const char *progname);
/* log_warn appends strerror(errno); log_warnx does not. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
