/* journal_codec: the bytes of a node's journal and snapshot files, and how
 * to tell a good record from a torn or corrupt one.  No I/O: the node's
 * journal module reads and writes the files.
 *
 *   frame      u32 length of the payload (little-endian, 1 ... JC_MAX_PAYLOAD)
 *              u32 crc32 of the 4 length bytes and the payload
 *              payload (one stored AT line, no "\n")
 *
 *   journal    "HERDJNL" 0x01, then frames, appended one by one
 *
 *   snapshot   "HERDSNAP", u32 version (1), u32 zero      16-byte header
 *              frames, one per record
 *              "HEND", u32 crc32 of every byte before it,  16-byte trailer
 *              u64 record count
 *
 * A snapshot is written whole and checked whole: a missing or wrong
 * trailer means the file is not to be trusted. */
#ifndef HERD_JOURNAL_CODEC_H
#define HERD_JOURNAL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define JC_FRAME_HEAD 8
#define JC_MAX_PAYLOAD (16u * 1024 * 1024)
#define JC_JOURNAL_HEAD 8
#define JC_SNAPSHOT_HEAD 16
#define JC_SNAPSHOT_TRAIL 16
#define JC_SNAPSHOT_VERSION 1

/* crc32 (zlib's); start with crc = 0, feed pieces in order. */
uint32_t jc_crc(uint32_t crc, const void *p, size_t n);

/* Encode one frame into out (JC_FRAME_HEAD + len bytes); returns that
 * size.  len must be 1 ... JC_MAX_PAYLOAD. */
size_t jc_frame_encode(const void *payload, size_t len, unsigned char *out);

/* The same frame's JC_FRAME_HEAD header alone, for writing a payload
 * where it lies (no copy). */
void jc_frame_head(const void *payload, size_t len,
                   unsigned char out[JC_FRAME_HEAD]);

/* Decode the frame at p (avail bytes from p to the end of the data):
 *    1  a good frame: *payload, *len set; it takes JC_FRAME_HEAD + *len
 *    0  the bytes end inside the frame (a torn tail)
 *   -1  corrupt: a zero or oversized length, or a checksum mismatch */
int jc_frame_decode(const unsigned char *p, size_t avail,
                    const unsigned char **payload, size_t *len);

/* The journal's header; check: 1 good, 0 a short prefix of it (torn at
 * creation), -1 not a journal of this version. */
void jc_journal_head(unsigned char out[JC_JOURNAL_HEAD]);
int jc_journal_head_check(const unsigned char *p, size_t avail);

void jc_snapshot_head(unsigned char out[JC_SNAPSHOT_HEAD]);
/* crc: jc_crc over every byte before the trailer (header and frames). */
void jc_snapshot_trail(uint32_t crc, uint64_t count,
                       unsigned char out[JC_SNAPSHOT_TRAIL]);

/* Check a whole snapshot image: header, every frame, trailer, checksum
 * and count.  0 and *count, or -1 with a reason (a static string) in
 * *why.  After 0, the frames from JC_SNAPSHOT_HEAD up to
 * len - JC_SNAPSHOT_TRAIL all decode. */
int jc_snapshot_check(const unsigned char *p, size_t len, uint64_t *count,
                      const char **why);

#endif
