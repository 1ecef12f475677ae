/* util: small text helpers the emulator's modules share. */
#ifndef HERD_PLACES_UTIL_H
#define HERD_PLACES_UTIL_H

#include <stddef.h>

/* A decimal number and nothing else: optional sign, digits, optional
 * fraction ("12", "-0.5", "+34.068930", "7."); no exponent, no hex, no
 * inf/nan, no spaces.  0, or -1 when malformed. */
int util_parse_decimal(const char *s, size_t len, double *out);

/* base64url without padding.  Encoding writes 4*ceil(n/3) bytes at most
 * plus a NUL and returns the length.  Decoding returns the byte count, or
 * -1 when the text is not base64url or does not fit cap. */
size_t util_b64url_encode(const unsigned char *p, size_t n, char *out);
long util_b64url_decode(const char *s, size_t len, unsigned char *out,
                        size_t cap);

/* x rounded to 7 decimals (about a centimetre), written as a JSON number
 * with no trailing zeros: "34.05612", "-118", "0".  buf holds >= 32 bytes.
 * Integer arithmetic only: printf's %g is the emulator's hot spot. */
size_t util_format_coord(double x, char *buf);

/* A JSON point {lat_key: lat, lng_key: lng} with util_format_coord()
 * numbers: {"lat", "lng"} for the legacy API, {"latitude", "longitude"}
 * for the new one.  NULL when memory is short. */
struct cJSON;
struct cJSON *util_json_lat_lng(double lat, double lng, const char *lat_key,
                                const char *lng_key);

/* A longitude moved back into [-180, 180] by whole turns. */
double util_wrap_lng(double lng);

#endif
