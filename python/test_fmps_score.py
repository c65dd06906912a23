"""Unit tests of fmps_score.py's hashing: values pinned from the C++ build (XXH3_64bits_withSeed of
xxHash 0.8 and the keys of ps/base/keys.h, data/line_parser.h), every length class of XXH3."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmps_score as f  # noqa: E402


def pattern(n):
    return bytes(((i * 131 + 7) & 255) for i in range(n))


class HashTest(unittest.TestCase):
    def test_xxh3_every_length_class(self):
        pinned = {
            (0, 0): 3244421341483603138, (0, 3): 7943829059066201772,
            (0, 8): 18013639643258255605, (0, 16): 9704121104262105176,
            (0, 17): 13081819869213806705, (0, 129): 1605741916052902306,
            (0, 241): 10767172507156293534, (0, 1025): 7405123385822357415,
            (7, 0): 10464923555624353464, (7, 3): 7765355391892373578,
            (7, 8): 771219447924889411, (7, 16): 15160687909115937837,
            (7, 17): 10795110398338273303, (7, 129): 7528844379985233072,
            (7, 241): 10237844250572424671, (7, 1025): 14899117465613960593,
        }
        for (seed, n), value in pinned.items():
            self.assertEqual(f.xxh3_64(pattern(n), seed), value, (seed, n))

    def test_keys_as_the_readers_make_them(self):
        self.assertEqual(f.token_key(13, b"68fd1e64"), 986362055869467469)
        self.assertEqual(f.integer_key(4, f.criteo_bucket(1382)), 337643516610789093)
        self.assertEqual(f.integer_key(2, f.criteo_bucket(-1)), 157147766896125598)
        self.assertEqual(f.integer_key(1, 3), 113613562914690398)
        self.assertEqual(f.mix64(12345), 17540659726606785873)

    def test_criteo_buckets_follow_the_log_rule(self):
        import math
        for x in range(3, 20000):
            self.assertEqual(f.criteo_bucket(x), int(math.floor(math.log(x) ** 2)), x)


if __name__ == "__main__":
    unittest.main()
