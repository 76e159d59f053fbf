#!/usr/bin/env python3
"""Writes nfc-table.txt, the data UnicodeNfc composes and decomposes with, from Debian's
unicode-data package (apt-get install unicode-data: /usr/share/unicode).

Each line is `code;class;decomposition` for every code point with a canonical combining class
other than 0 or a canonical decomposition (hex, space-separated), then `code;x` for each code
point of CompositionExclusions.txt. Usage: python3 make_table.py [/usr/share/unicode] > nfc-table.txt
"""
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
version = open(f"{root}/CompositionExclusions.txt", encoding="utf-8").readline().strip("# \n")
print(f"# canonical classes and decompositions (UnicodeData.txt) and composition exclusions ({version})")
for line in open(f"{root}/UnicodeData.txt", encoding="utf-8"):
    fields = line.rstrip("\n").split(";")
    code, ccc, decomposition = fields[0], int(fields[3]), fields[5]
    canonical = decomposition if decomposition and not decomposition.startswith("<") else ""
    if ccc != 0 or canonical:
        print(f"{code};{ccc};{canonical}")
for line in open(f"{root}/CompositionExclusions.txt", encoding="utf-8"):
    code = line.split("#")[0].strip()
    if code:
        print(f"{code};x")
