#include "journal_codec.h"

#include <string.h>
#include <zlib.h>

static const unsigned char journal_magic[JC_JOURNAL_HEAD] = {
    'H', 'E', 'R', 'D', 'J', 'N', 'L', 0x01};
static const unsigned char snapshot_magic[8] = {
    'H', 'E', 'R', 'D', 'S', 'N', 'A', 'P'};
static const unsigned char trail_magic[4] = {'H', 'E', 'N', 'D'};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint32_t jc_crc(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;

    /* zlib takes a uInt length: feed huge buffers in pieces. */
    while (n > 0) {
        uInt piece = n > 0x40000000u ? 0x40000000u : (uInt)n;
        crc = (uint32_t)crc32(crc, b, piece);
        b += piece;
        n -= piece;
    }
    return crc;
}

/* The checksum covers the length too, so a frame whose length was bent
 * cannot pass by pointing at other bytes that happen to check out. */
static uint32_t frame_crc(const unsigned char *len_bytes,
                          const unsigned char *payload, size_t len)
{
    return jc_crc(jc_crc(0, len_bytes, 4), payload, len);
}

size_t jc_frame_encode(const void *payload, size_t len, unsigned char *out)
{
    put32(out, (uint32_t)len);
    memcpy(out + JC_FRAME_HEAD, payload, len);
    put32(out + 4, frame_crc(out, out + JC_FRAME_HEAD, len));
    return JC_FRAME_HEAD + len;
}

void jc_frame_head(const void *payload, size_t len,
                   unsigned char out[JC_FRAME_HEAD])
{
    put32(out, (uint32_t)len);
    put32(out + 4, frame_crc(out, payload, len));
}

int jc_frame_decode(const unsigned char *p, size_t avail,
                    const unsigned char **payload, size_t *len)
{
    uint32_t n;

    if (avail < 4)
        return 0;
    n = get32(p);
    if (n == 0 || n > JC_MAX_PAYLOAD)
        return -1;              /* zeroed or garbage, never a record */
    if (avail < JC_FRAME_HEAD || avail - JC_FRAME_HEAD < n)
        return 0;
    if (frame_crc(p, p + JC_FRAME_HEAD, n) != get32(p + 4))
        return -1;
    *payload = p + JC_FRAME_HEAD;
    *len = n;
    return 1;
}

void jc_journal_head(unsigned char out[JC_JOURNAL_HEAD])
{
    memcpy(out, journal_magic, JC_JOURNAL_HEAD);
}

int jc_journal_head_check(const unsigned char *p, size_t avail)
{
    if (avail < JC_JOURNAL_HEAD)
        return memcmp(p, journal_magic, avail) == 0 ? 0 : -1;
    return memcmp(p, journal_magic, JC_JOURNAL_HEAD) == 0 ? 1 : -1;
}

void jc_snapshot_head(unsigned char out[JC_SNAPSHOT_HEAD])
{
    memcpy(out, snapshot_magic, 8);
    put32(out + 8, JC_SNAPSHOT_VERSION);
    put32(out + 12, 0);
}

void jc_snapshot_trail(uint32_t crc, uint64_t count,
                       unsigned char out[JC_SNAPSHOT_TRAIL])
{
    memcpy(out, trail_magic, 4);
    put32(out + 4, crc);
    put64(out + 8, count);
}

int jc_snapshot_check(const unsigned char *p, size_t len, uint64_t *count,
                      const char **why)
{
    const unsigned char *trail;
    size_t off = JC_SNAPSHOT_HEAD, end;
    uint64_t n = 0;

    if (len < JC_SNAPSHOT_HEAD + JC_SNAPSHOT_TRAIL) {
        *why = "shorter than a header and a trailer";
        return -1;
    }
    if (memcmp(p, snapshot_magic, 8) != 0) {
        *why = "not a snapshot (bad magic)";
        return -1;
    }
    if (get32(p + 8) != JC_SNAPSHOT_VERSION || get32(p + 12) != 0) {
        *why = "unknown snapshot version";
        return -1;
    }
    end = len - JC_SNAPSHOT_TRAIL;
    while (off < end) {
        const unsigned char *payload;
        size_t plen;
        int rc = jc_frame_decode(p + off, end - off, &payload, &plen);

        if (rc <= 0) {
            *why = rc == 0 ? "a record runs into the trailer (truncated?)"
                           : "a corrupt record";
            return -1;
        }
        off += JC_FRAME_HEAD + plen;
        n++;
    }
    trail = p + end;
    if (memcmp(trail, trail_magic, 4) != 0) {
        *why = "no trailer (truncated?)";
        return -1;
    }
    if (get32(trail + 4) != jc_crc(0, p, end)) {
        *why = "checksum mismatch";
        return -1;
    }
    if (get64(trail + 8) != n) {
        *why = "record count mismatch";
        return -1;
    }
    *count = n;
    return 0;
}
