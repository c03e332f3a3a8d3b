"""The host input decoder reads what the per-character reader before it read, and what stdlib csv reads.

The decoder checks every line of a CSV file and every line the FMC emulator receives, so it runs
on regular expressions; this file keeps the former per-character reader as the reference, and
holds both against each other on every string of the test suite and on generated lines (valid
and broken), and the decoder against the standard library's ``csv`` reader.
"""
import ast
import csv
import pathlib
import random

import pytest

from qualys_connector.hostinput import builders, codec as c

TESTS = pathlib.Path(__file__).parent


def reference_split_fields(line: str) -> list[str]:
    """The decoder as it was: one character at a time (kept only to compare against)."""
    if "\n" in line.rstrip("\r\n") or "\r" in line.rstrip("\r\n"):
        raise c.CommandSyntaxError("a host input line may not contain a newline")
    line = line.rstrip("\r\n")
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise c.CommandSyntaxError("unterminated quoted field")
                ch = line[i]
                if ch == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(ch)
                i += 1
            while i < n and line[i] in " \t":
                i += 1
            if i < n and line[i] != ",":
                raise c.CommandSyntaxError(f"unexpected character {line[i]!r} after a quoted field")
            fields.append("".join(buf))
        else:
            j = line.find(",", i)
            end = n if j < 0 else j
            raw = line[i:end]
            if '"' in raw:
                raise c.CommandSyntaxError("a quote inside an unquoted field")
            fields.append(raw.rstrip(" \t"))
            i = end
        if i >= n:
            return fields
        i += 1
        if i == n:
            fields.append("")
            return fields


def outcome(split, line):
    try:
        return split(line)
    except c.CommandSyntaxError as exc:
        return f"error: {exc}"


def strings_of_the_test_suite() -> set[str]:
    """Every line of every string and bytes literal in tests/, and of the expected sample CSV."""
    found: set[str] = set()
    for path in TESTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                text = node.value if isinstance(node.value, str) else node.value.decode("utf-8", "replace")
                found.update(text.splitlines(keepends=True))
                found.add(text)
    found.update((TESTS / "data" / "sample_expected.csv").read_text().splitlines(keepends=True))
    return found


def test_every_string_of_the_test_suite_reads_as_before():
    lines = strings_of_the_test_suite()
    assert len(lines) > 500
    for line in lines:
        assert outcome(c.split_fields, line) == outcome(reference_split_fields, line), line


def test_generated_lines_valid_or_broken_read_as_before():
    rng = random.Random(1414)
    alphabet = ['a', 'b', ' ', '\t', ',', '"', '""', 'é', '#', '\r', '\n', "SetMap:", "AddHost"]
    for _ in range(20000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert outcome(c.split_fields, line) == outcome(reference_split_fields, line), repr(line)


def test_generated_commands_read_as_before_and_round_trip():
    rng = random.Random(7)
    pieces = ["a", "b c", ",", '"', '""', " ", "\t", "é", "#x", "CVE-1"]
    for _ in range(3000):
        text = lambda: "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))  # noqa: E731
        cmd = builders.add_scan_result(f"10.0.{rng.randint(0, 9)}.1", text(), rng.randint(1, 99999),
                                       rng.choice([None, 443]), rng.choice([None, "tcp"]), text(), text(),
                                       [text()], [])
        line = c.encode(cmd) + rng.choice(["", "\n", "\r\n"])
        assert c.split_fields(line) == reference_split_fields(line)
        assert c.decode(line) == cmd


def csv_field(rng: random.Random) -> tuple[str, str]:
    """A random value and how a CSV writer may spell it (quoted when it must be, or at random)."""
    value = "".join(rng.choice(['a', 'Z', '1', ' ', ',', '"', 'é', '-']) for _ in range(rng.randint(0, 12)))
    plain = value.strip(" ")
    if '"' in value or "," in value or value != plain or rng.random() < 0.3:
        return value, '"' + value.replace('"', '""') + '"'
    return value, value


@pytest.mark.parametrize("blanks", [False, True])
def test_the_decoder_agrees_with_the_standard_library_csv_reader(blanks):
    """Commas, quotes, doubled quotes and spaces; with ``blanks``, spaces after separators too."""
    rng = random.Random(2026 + blanks)
    for _ in range(5000):
        values, spelled = zip(*(csv_field(rng) for _ in range(rng.randint(1, 9))))
        separator = (lambda: "," + " " * rng.randint(0, 2)) if blanks else (lambda: ",")
        line = spelled[0]
        for field in spelled[1:]:
            line += separator() + field
        if not line:
            continue    # csv reads an empty line as no field at all; the FMC skips blank lines
        expected = next(csv.reader([line], skipinitialspace=blanks, strict=True))
        assert c.split_fields(line) == expected == list(values), line


def test_a_line_written_by_the_standard_library_csv_writer_reads_back():
    rng = random.Random(99)
    for _ in range(2000):
        values = [csv_field(rng)[0].strip(" ") for _ in range(rng.randint(1, 9))]
        for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_ALL):
            out = []
            csv.writer(type("W", (), {"write": lambda self, s: out.append(s)})(), quoting=quoting,
                       lineterminator="\n").writerow(values)
            assert c.split_fields("".join(out)) == values


@pytest.mark.parametrize("line, reason", [
    ('AddHost,"1.2.3.4', "unterminated quoted field"),
    ('AddHost,"1.2.3.4""', "unterminated quoted field"),
    ('AddHost,"1.2.3.4" x', "unexpected character 'x' after a quoted field"),
    ('AddHost,1.2"3.4', "a quote inside an unquoted field"),
    ('AddHost,1.2.3.4\rAddHost', "a host input line may not contain a newline"),
])
def test_errors_keep_their_reason(line, reason):
    with pytest.raises(c.CommandSyntaxError) as info:
        c.decode(line)
    assert str(info.value) == reason


def counted_by_decode(lines):
    commands = [c.decode(line) for line in lines]
    commands = [cmd for cmd in commands if cmd is not None]
    return [len(commands), sum(cmd.name == "AddScanResult" for cmd in commands),
            sum(cmd.name == "AddHost" for cmd in commands)]


def test_a_block_check_vouches_only_for_lines_decode_accepts_and_counts_the_same():
    rng = random.Random(31)
    shapes = ['AddHost,10.0.0.1', 'AddScanResult,1.2.3.4,"Q",1,,,"a ""b"", c","d","cve_ids:","bugtraq_ids:"',
              'AddScanResult ,1.2.3.4', 'AddScanResultX,1', 'AddHost', 'SetOS,1.2.3.4, "V" ,P', 'ScanFlush',
              '# comment "', '', '  AddHost,1.2.3.4', '"AddHost",1.2.3.4', 'SetMap:M,AddHost,1.2.3.4',
              'AddHost,"1.2.3.4', 'AddHost,1"2', 'AddHost,"a" b', 'AddHost,a\r', 'AddHost\t,x', 'AddHost,"x"\t',
              'AddScanResult,1.2.3.4,"Qé",1,,,"« ""é"" »","d","cve_ids:","bugtraq_ids:"', 'AddHost,é"', 'AddHostAttribute,a']
    vouched = 0
    for _ in range(4000):
        lines = [rng.choice(shapes) for _ in range(rng.randint(1, 6))]
        text = "\n".join(lines) + "\n"
        counts = c.check_lines(text.encode(), ("AddScanResult", "AddHost"))
        if counts is not None:
            vouched += 1
            assert counts == counted_by_decode(lines), lines
    assert vouched > 300


def test_a_block_of_encoded_commands_is_checked_in_bulk():
    rng = random.Random(5)
    lines = []
    for i in range(2000):
        lines.append(c.encode(builders.add_host(f"10.0.{i // 250}.{i % 250}")))
        lines.append(c.encode(builders.add_scan_result(f"10.0.{i // 250}.{i % 250}", "Q", i, rng.choice([None, 80]),
                                                       rng.choice([None, "udp"]), 'a "t", x', " d,  ", ["CVE-1"], [])))
    lines += [c.encode(builders.set_source("QualysGuard")), c.encode(builders.scan_flush())]
    assert c.check_lines(("\n".join(lines) + "\n").encode(), ("AddScanResult", "AddHost")) == [4002, 2000, 2000]


@pytest.mark.parametrize("possessive", [False, True])
def test_the_whole_line_pattern_accepts_exactly_the_lines_split_fields_accepts(possessive):
    import sys
    if possessive and sys.version_info < (3, 11):
        pytest.skip("possessive quantifiers need Python 3.11")
    pattern = c.good_line_pattern(possessive)
    rng = random.Random(11)
    alphabet = ['a', ' ', '\t', ',', '"', '""', 'é', '#']
    for _ in range(20000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert (pattern.fullmatch(line) is not None) == isinstance(outcome(c.split_fields, line), list), repr(line)


def test_a_block_check_never_lets_a_quoted_field_run_on_over_a_line_end():
    """The block pattern lets a quoted field run on over an LF; the even-quotes test must refuse every such block."""
    rng = random.Random(23)
    pieces = ['AddHost,', 'a', ' ', '\t', ',', '"', '""', 'é', '\n']
    vouched = 0
    for _ in range(20000):
        text = "AddHost," + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        text = text.replace("\n", "\nAddHost,") + "\n"         # every line starts with a command name
        counts = c.check_lines(text.encode(), ("AddHost",))
        lines = text.split("\n")[:-1]
        accepted = all(isinstance(outcome(c.split_fields, line), list) for line in lines)
        assert (counts is not None) == accepted, repr(text)
        if counts is not None:
            vouched += 1
            assert counts == [len(lines), len(lines)]
    assert vouched > 1000


def test_a_block_with_a_quoted_field_over_two_lines_is_left_to_the_line_by_line_check():
    text = 'AddHost,"a\nAddHost,b",c\n'
    assert c.check_lines(text.encode()) is None
    assert c.check_lines(b'AddHost,"a"\nAddHost,"b"",c"\n') == [2]
