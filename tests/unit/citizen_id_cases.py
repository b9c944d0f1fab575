"""Cases of the GB 11643 rule shared by the Python and the Spark tests (tests/unit/test_citizen_id*.py).
Expected check characters were worked out by hand from the standard's weights 7 9 10 5 8 4 2 1 6 3 7 9 10
5 8 4 2 and the map 1 0 X 9 8 7 6 5 4 3 2 (sum mod 11 -> character); the working is in the comments."""

from __future__ import annotations

from datetime import date

from smartrehab import citizen_id as cid

AS_OF = date(2026, 11, 20)

# (raw value, expected 18-digit form, converted from 15 digits, expected failure). Shared with the Spark test.
CASES = [
    # The standard's worked example: sum 167, 167 mod 11 = 2 -> X.
    ("11010519491231002X", "11010519491231002X", False, None),
    # 15 -> 18: 110105 19 491231 002 is the same number as above.
    ("110105491231002", "11010519491231002X", True, None),
    # 13050319670401001: 7+27+0+25+0+12+2+9+36+21+0+36+0+5+0+0+2 = 182, mod 11 = 6 -> 6.
    ("130503670401001", "130503196704010016", True, None),
    # 34052419800101001: 21+36+0+25+16+16+2+9+48+0+0+9+0+5+0+0+2 = 189, mod 11 = 2 -> X.
    ("340524800101001", "34052419800101001X", True, None),
    # Leap day of 2000 (divisible by 400): sum 130, mod 11 = 9 -> 3.
    ("110105200002290013", "110105200002290013", False, None),
    # The earliest birth date allowed, 1900-01-01: sum 68, mod 11 = 2 -> X.
    ("11010519000101001X", "11010519000101001X", False, None),
    # Normalisation: surrounding (ideographic) white space, full-width digits, full-width and lower-case x.
    ("  １１０１０５１９４９１２３１００２ｘ\u3000", "11010519491231002X", False, None),
    ("\t11010519491231002x\r\n", "11010519491231002X", False, None),
    ("11010519491231002Ｘ", "11010519491231002X", False, None),
    ("\u00a0１３０５０３６７０４０１００１", "130503196704010016", True, None),
    # Check character: the worked example with 1 instead of X.
    ("110105194912310021", "110105194912310021", False, cid.BAD_CHECK_CHAR),
    ("110105194912310021".replace("1", "１", 1), "110105194912310021", False, cid.BAD_CHECK_CHAR),
    # 1999-02-30: sum 185, mod 11 = 9 -> 3 (a right check character, so only the date is wrong).
    ("110105199902300023", "110105199902300023", False, cid.INVALID_BIRTH_DATE),
    # 1900-02-29 (1900 is not a leap year): sum 137, mod 11 = 5 -> 7.
    ("110105190002290017", "110105190002290017", False, cid.INVALID_BIRTH_DATE),
    # 15 digits, 1949-02-30: converted, then the date fails. 11010519490230002: sum 155, mod 11 = 1 -> 0.
    ("110105490230002", "110105194902300020", True, cid.INVALID_BIRTH_DATE),
    # Month 13 in the 15-digit form: 11010519491301002: sum 146, mod 11 = 3 -> 9.
    ("110105491301002", "110105194913010029", True, cid.INVALID_BIRTH_DATE),
    # 2030-12-31 is after the as-of day: sum 127, mod 11 = 6 -> 6.
    ("110105203012310026", "110105203012310026", False, cid.FUTURE_BIRTH_DATE),
    # 1899-12-31: sum 196, mod 11 = 9 -> 3.
    ("110105189912310023", "110105189912310023", False, cid.BIRTH_BEFORE_1900),
    # Pattern: wrong length, a letter other than X, X not last, 15 characters that are not all digits.
    ("1101051949123100", None, False, cid.BAD_PATTERN),
    ("11010519491231002XX", None, False, cid.BAD_PATTERN),
    ("11010519491231002Y", None, False, cid.BAD_PATTERN),
    ("1101051949123100X2", None, False, cid.BAD_PATTERN),
    ("11010549123100X", None, False, cid.BAD_PATTERN),
    ("110105 19491231002X", None, False, cid.BAD_PATTERN),
    ("11010519491231002X\u2028", None, False, cid.BAD_PATTERN),
    ("#???", None, False, cid.BAD_PATTERN),
]
EMPTY = [None, "", " ", "\u3000\t"]
