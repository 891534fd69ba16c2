/* src/core/gz.h -- a line reader over zlib's gzopen/gzgets, for streaming
 * .jsonl and .jsonl.gz files (zlib reads uncompressed files transparently, so
 * one reader serves both), plus the file operations crash-safe JSONL appends
 * and replacements need (fsync, truncate, file identity, directory fsync).
 *
 * What it is not: no JSON, no record logic (lua/rlaif/data.lua does that).
 * Ownership: rlaif_gz_open returns a new reader; rlaif_gz_close frees it
 * (NULL-safe). A line returned by rlaif_gz_getline is borrowed and valid until
 * the next call on the same reader. Error messages name the file. */
#ifndef RLAIF_GZ_H
#define RLAIF_GZ_H

#include <stddef.h>
#include <stdint.h>

#include "rlaif.h"

typedef struct rlaif_gz rlaif_gz;

/* Open `path` for reading (gzip or plain). RLAIF_EIO when it cannot be opened. */
rlaif_status rlaif_gz_open(rlaif_gz **out, const char *path);

/* The next line, without its '\n' (a '\r' before it is kept). Lines may be of
 * any length. At end of file *line = NULL and *len = 0. `*newline` is 1 when
 * the line ended with '\n', 0 for a last line without one. RLAIF_EFORMAT for
 * a corrupt or truncated gzip stream, RLAIF_ENOMEM, RLAIF_EIO. */
rlaif_status rlaif_gz_getline(rlaif_gz *g, const char **line, size_t *len, int *newline);

/* Number of lines returned so far (the 1-based number of the last line). */
int64_t rlaif_gz_lineno(const rlaif_gz *g);

/* The path the reader was opened with. Borrowed. */
const char *rlaif_gz_path(const rlaif_gz *g);

void rlaif_gz_close(rlaif_gz *g);

/* fsync the file descriptor fd (after the caller flushed its stdio buffer). */
rlaif_status rlaif_fs_fsync(int fd, const char *what);

/* Truncate the file at `path` to `size` bytes (used to drop a torn last line). */
rlaif_status rlaif_fs_truncate(const char *path, int64_t size);

/* Create directory `path` (mode 0755 less the umask); an existing directory is fine. */
rlaif_status rlaif_fs_mkdir(const char *path);

/* The identity of the file `path` names (device and inode, after symlinks):
 * *exists = 0 when there is no such file. Two paths name the same file when
 * both exist and their identities are equal (links and "a/../b" included). */
rlaif_status rlaif_fs_file_id(const char *path, int *exists, uint64_t *dev, uint64_t *ino);

/* fsync the directory holding `path`, so a rename into it survives power loss. */
rlaif_status rlaif_fs_fsync_dir(const char *path);

#endif
