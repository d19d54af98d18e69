"""A local emulator of the federal ИЭМК: the test contour on a laptop and in CI."""
