/* Regressions found by the libFuzzer targets in tests/fuzz/: each test
 * holds the input that broke an invariant (also kept in the target's seed
 * corpus) and checks the invariant directly. */
#include "tests/unit/unit.h"

#include "common/protocol.h"

/* fuzz_client_line: a radius > 0 whose first 17 fraction digits were all
 * zero came back as 0 km (only those 17 digits were summed), though the
 * metres text was right. */
static void test_tiny_radius_is_not_zero_km(void **state)
{
    struct proto_request r;

    (void)state;
    assert_int_equal(proto_parse_request(
                         LIT("WHATSAT kiwi 0.0000000000000000000001387565421 20\n"),
                         &r),
                     PROTO_WHATSAT);
    assert_true(r.u.whatsat.radius_km > 0);
    assert_float_equal(r.u.whatsat.radius_km / 1.387565421e-22, 1.0, 1e-12);
    assert_string_equal(r.u.whatsat.radius_m,
                        "0.0000000000000000001387565421");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_radius_is_not_zero_km),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
