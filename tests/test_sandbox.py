"""Tests for clbench.sandbox: correctness, hostile answers, throughput, memoisation."""
import multiprocessing
import os
import socket
import threading
import time
import uuid

import pytest

from clbench.sandbox import (ExecResult, Sandbox, SandboxLimits, evaluate_expression,
                             evaluate_many, score_expression)

LIM = SandboxLimits()
# Python-level escape to the `os` module's globals, to show the OS limits still hold.
OSG = ("[c for c in ().__class__.__base__.__subclasses__() "
       "if c.__name__=='_wrap_close'][0].__init__.__globals__")
T3 = [(1, 3), (2, 5), (7, 15)]  # tests for 2*x+1


@pytest.fixture(scope="module")
def sb():
    with Sandbox() as s:
        yield s


def test_correct_wrong_and_invalid_answers(sb):
    assert score_expression("2*x+1", T3) == 1.0
    assert score_expression("x*x%7", [(3, 2), (4, 2), (5, 4)]) == 1.0
    assert score_expression("x+1", [(1, 2), (2, 4)]) == 0.5
    assert score_expression("x+", T3) == 0.0
    assert evaluate_expression("x+", [1, 2]) == ExecResult((None, None), "rejected")
    assert score_expression("str(x)", [(1, 1)]) == 0.0
    assert evaluate_expression("str(x)", [1]) == ExecResult((None,), "ok")
    assert evaluate_expression("10//x", [0, 2, 5]) == ExecResult((None, 5, 2), "ok")
    assert score_expression("10//x", [(0, 0), (2, 5), (5, 2)]) == pytest.approx(2 / 3)
    assert score_expression("x*1.0", [(2, 2)]) == 1.0  # float equal to the int counts
    assert score_expression("x/3", [(1, 0)]) == 0.0
    assert score_expression("float('nan')", [(1, 1)]) == 0.0
    assert score_expression("x>0", [(5, 1), (-5, 0)]) == 1.0  # bools count as 0/1
    assert score_expression("abs(x)+max(x,0)+sum(range(x))", [(3, 9)]) == 1.0
    assert score_expression("2*x+1", []) == 0.0
    assert sb.score_many([("2*x+1", T3), ("x+1", [(1, 2), (2, 4)]), ("(", T3)]) == [1.0, 0.5, 0.0]


def test_host_side_rejections(sb):
    for expr in ["x" + "+1" * 200, "x\x00", "(" * 500 + "x" + ")" * 500,
                 "import os", "x = 1", "yield x", 12345]:
        assert sb.evaluate_many([(expr, [1])]) == [ExecResult((None,), "rejected")], expr


def test_malformed_answers_print_nothing_to_the_terminal(sb):
    """`2x+1` is a SyntaxWarning before it is a SyntaxError: thousands of them per
    evaluation must not reach the user's terminal (nor fail a `-W error` run)."""
    import warnings

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert sb.score_many([("2x+1", T3), ("1if x else 2", T3), ("0x1for x in y", T3)]) == [0.0, 0.0, 0.0]
    assert shown == []


def test_isolation_is_active(sb):
    sb.evaluate_many([("x", [1])])
    iso = sb.isolation
    assert iso["netns"] and iso["pidns"], iso
    # The builtins restriction is bypassed here on purpose: the child still runs
    # chrooted (cwd '/' is the empty dir), as nobody when the host is root.
    res = sb.evaluate_many([(OSG + "['getuid']()", [0]),
                            (f"{OSG}['path'].exists('/tmp') or {OSG}['path'].exists('/proc')", [0])])
    if iso["root"]:
        assert res[0] == ExecResult((65534,), "ok")
    assert res[1] == ExecResult((0,), "ok")


def _assert_healthy(sb):
    assert sb.score_many([("2*x+1", T3)]) == [1.0]
    assert score_expression("2*x+1", T3) == 1.0


PWNED = f"/tmp/clbench_pwned_{uuid.uuid4().hex}"
O = f"(o:={OSG})"  # walrus keeps escapes under the 300-character cap: o is os' globals
B = f"(b:={OSG}['__builtins__'])"
HOSTILE = [  # (answer, tests, expected score); none of these is rejected by the pre-check
    ("[1 for _ in iter(int,1)]", T3, 0.0),                 # infinite loops (iter not allowed...
    (B + "['any'](b['iter'](int,1))", T3, 0.0),            # ...but reachable): pure CPU
    ("[1 for _ in " + OSG + "['__builtins__']['iter'](int,1)]", T3, 0.0),  # grows to RLIMIT_AS
    ("sum(range(10**12))", T3, 0.0),                       # CPU burn
    ("[0]*10**10", T3, 0.0),                               # memory bombs
    ("'a'*10**10", T3, 0.0),
    ("len([0]*10**8)", T3, 0.0),
    (OSG + "['fork']() and x", T3, 0.0),                   # fork / fork bombs
    ("(lambda f: f(f))(lambda f: [" + OSG + "['fork'](), f(f)])", T3, 0.0),
    (OSG + f"['system']('touch {PWNED}')", [(1, 0)], 0.0),
    (f"open('{PWNED}','w').write('x')", [(1, 1)], 0.0),     # file writes
    (B + f"['open']('{PWNED}','w').write('x')", [(1, 1)], 0.0),
    (f"({O}['close'](0), o['open']('{PWNED}', 65, 438))[1]*0+2*x+1", T3, 0.0),
    (B + "['__import__']('subprocess').run('id')", [(1, 0)], 0.0),  # nothing importable
    (OSG + "['sys'].modules['time'].sleep(100)", T3, 0.0),  # wall-clock timeout
    ("'9'*10**7", T3, 0.0),                                # huge outputs
    ("10**(10**6)", [(1, 1)], 0.0),
    ("[x]*10**6", T3, 0.0),
    (OSG + "['write'](3, b'['+b'1,'*10**5+b'1]')", T3, 0.0),  # oversized raw pipe data
    (OSG + "['write'](3, b'[1,{')*0+2*x+1", T3, 0.0),        # malformed pipe data
    (OSG + "['_exit'](0)", T3, 0.0),                       # exits / kills
    (O + "['kill'](o['getpid'](), 9)", T3, 0.0),
    (O + "['kill'](o['getppid'](), 9) or 2*x+1", T3, 0.0),  # EPERM: PID 1 is root
    (OSG + "['kill'](-1, 9) or 2*x+1", T3, 0.0),
    (OSG + f"['kill']({os.getpid()}, 9) or 2*x+1", T3, 0.0),  # test process not visible
    (OSG + "['abort']()", T3, 0.0),
    ("exit()", T3, 0.0),
    ("quit(0)", T3, 0.0),
    (OSG + "['sys'].exit(0)", T3, 0.0),
    ("__import__('os')._exit(0)", T3, 0.0),
    ("(lambda f: f(f))(lambda f: f(f))", T3, 0.0),         # recursion
]


@pytest.mark.parametrize("expr,tests,expected", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answer(sb, expr, tests, expected):
    assert len(expr) <= 300
    t0 = time.monotonic()
    assert sb.score_many([(expr, tests)]) == [expected]
    assert time.monotonic() - t0 < LIM.wall_seconds + 1.0
    assert not os.path.exists(PWNED)
    _assert_healthy(sb)


def test_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("CLBENCH_SECRET", "4242")
    tests = [(1, 4243), (2, 4244)]
    exprs = [f"int({OSG}['environ'].get('CLBENCH_SECRET', '0'))+x",
             f"int({OSG}['getenv']('CLBENCH_SECRET') or 0)+x",
             f"{OSG}['__builtins__']['open']('/proc/{os.getpid()}/environ').read().count('4242')*4242+x"]
    with Sandbox() as s:  # a fresh worker, started after the secret was set
        assert s.score_many([(e, tests) for e in exprs]) == [0.0, 0.0, 0.0]
        # control: the escape itself works, the environment is just empty
        assert s.evaluate_many([(f"len({OSG}['environ'])", [0])]) == [ExecResult((0,), "ok")]


def test_no_network(sb):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    accepted = []

    def serve(stop):
        while not stop.is_set():
            try:
                accepted.append(srv.accept())
            except OSError:
                pass
    stop = threading.Event()
    th = threading.Thread(target=serve, args=(stop,), daemon=True)
    th.start()
    addr = "b'\\x02\\x00'+" + f"({port}).to_bytes(2,'big')+b'\\x7f\\x00\\x00\\x01'+b'\\x00'*8"
    via_ctypes = (f"({OSG}['close'](0), (c:={OSG}['sys'].modules['ctypes'].CDLL(None)).socket(2,1,0),"
                  f" c.connect(0, {addr}, 16))[2]+x")
    via_socket = f"{OSG}['__builtins__']['__import__']('socket').create_connection(('127.0.0.1',{port})) and x"
    try:
        # control: ctypes (raw syscalls) is reachable from the child
        assert sb.evaluate_many([(f"{OSG}['sys'].modules['ctypes'].CDLL(None).getpid()*0+x", [3])]) \
            == [ExecResult((3,), "ok")]
        scores = sb.score_many([(via_ctypes, [(1, 1)]), (via_socket, [(1, 1)])])
        time.sleep(0.3)
    finally:
        stop.set()
        th.join(2)
        srv.close()
    if not sb.isolation.get("netns"):
        pytest.skip("unshare(CLONE_NEWNET) not permitted here: network isolation inactive")
    assert scores == [0.0, 0.0]
    assert accepted == []


def test_worker_restarts_after_being_killed(sb):
    sb.evaluate_many([("x", [1])])
    sb._proc.kill()
    sb._proc.wait()
    assert sb.score_many([("2*x+2", T3)]) == [0.0]
    assert sb.score_many([("2*x+1", [(5, 11)])]) == [1.0]


def test_close_leaves_no_processes():
    def sandbox_procs():
        out = set()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"clbench/sandbox.py" in f.read():
                        out.add(pid)
            except OSError:
                pass
        return out
    before = sandbox_procs()
    s = Sandbox()
    s.evaluate_many([("x", [1])])
    assert len(sandbox_procs() - before) == 2  # outer waiter + PID-1 server
    s.close()
    time.sleep(0.2)
    assert sandbox_procs() - before == set()


def test_memoisation_and_one_answer_per_child():
    getpid = OSG + "['getpid']()+0*x"
    with Sandbox() as s:
        a = s.evaluate_many([(getpid, [1, 2])])[0]
        b = s.evaluate_many([(getpid, [1, 2])])[0]
        assert a == b and a.status == "ok" and a.outputs[0] == a.outputs[1]  # cached: same child
        c, d = s.evaluate_many([(getpid + "+0", [1]), (getpid + "+1-1", [1])])
        assert len({a.outputs[0], c.outputs[0], d.outputs[0]}) == 3  # a fork per answer
        assert s.evaluate_many([(getpid, [1, 2]), (getpid, [1, 2])]) == [a, a]
        assert s.score_many([("x+1", [(1, 2)])] * 3) == [1.0] * 3


def _child_process_score(q):
    q.put((score_expression("2*x+1", T3), evaluate_many([("x*x", [3])])[0].outputs))


def test_module_functions_work_in_forked_process():
    assert score_expression("2*x+1", T3) == 1.0  # start the parent's shared sandbox
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_process_score, args=(q,))
    p.start()
    got = q.get(timeout=30)
    p.join(10)
    assert got == (1.0, (9,))
    assert score_expression("2*x+1", T3) == 1.0  # the parent's worker is untouched


def test_thousand_answers_with_hostile_mix():
    hostile = [h for h in HOSTILE if h[2] == 0.0]
    items, expected = [], []
    for i in range(1000):
        a, b = i % 13 + 1, i // 13
        tests = [(x, a * x + b) for x in (-3, 0, 1, 2, 5, 11, 17, 100)]
        if i % 20 == 19:
            expr, exp = hostile[(i // 20) % len(hostile)][0], 0.0
        elif i % 3 == 0:
            expr, exp = f"{a}*x+{b}", 1.0
        elif i % 3 == 1:
            expr, exp = f"{a}*x+{b + 1}", 0.0
        else:  # right only for x >= 0
            expr, exp = f"{a}*abs(x)+{b}", 7 / 8
        items.append((expr, tests))
        expected.append(exp)
    with Sandbox() as s:
        t0 = time.monotonic()
        scores = s.score_many(items)
        dt = time.monotonic() - t0
    print(f"\n1000 answers ({len(set(e for e, _ in items))} distinct) scored in {dt:.2f} s")
    assert scores == expected
    assert dt < 30


ADD_CHECKS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]
FORGE = "import sys\nos = sys.modules['os']\nos.write(3, b'[1, 1, 1]')\nos._exit(0)"
ALWAYS_EQUAL = "class A:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return A()"


@pytest.mark.parametrize("program,expected", [
    ("def add(a, b):\n    return a + b", 1.0),
    ("def add(a, b):\n    return 3 if a == 1 else 0", 2 / 3),
    (FORGE, 0.0),         # writes "all passed" to the result pipe itself
    (ALWAYS_EQUAL, 0.0),  # returns an object equal to every expected value
    ("raise SystemExit(0)", 0.0),
], ids=["right", "partial", "forged-verdict", "always-equal", "system-exit"])
def test_program_mode_answer_cannot_forge_its_verdict(sb, program, expected):
    """Program mode (MBPP): `assert L == R` checks are scored on the host from L's value, so
    one universal answer cannot pass every problem's asserts."""
    assert sb.score_programs([(program, ADD_CHECKS)]) == [pytest.approx(expected)]


# asserts of every form the host must judge (issue: any non-literal assert was judged in the child)
FORMS = ["assert is_even(4)", "assert not is_even(7)", "assert math.isclose(half(3), 1.5, rel_tol=1e-9)",
         "assert set(evens([1, 2, 4])) == {2, 4}", "assert evens([2]) == evens([2, 3])",
         "assert len(evens([1, 2, 4])) == 2"]
RIGHT = ("def is_even(n):\n    return n % 2 == 0\ndef half(n):\n    return n / 2\n"
         "def evens(xs):\n    return [x for x in xs if x % 2 == 0]")
CONSTANT = "def is_even(n):\n    return True\nhalf = evens = is_even"  # an honest, lazy answer
# forgers: write a result record of their own to the inherited result descriptor, then exit
FORGE_ONES = "import sys\nos = sys.modules['os']\nos.write(3, b'[1, 1, 1, 1, 1, 1, 1]')\nos._exit(0)"
FORGE_TRUE = ("import sys\nos = sys.modules['os']\nn = len(sys._getframe(1).f_locals['checks'])\n"
              "os.write(3, ('[' + ', '.join(['\"True\"'] * n) + ']').encode())\nos._exit(0)")
PATCH = ("import sys\nb = sys.modules['builtins']\nb.len = lambda x: 2\nb.set = lambda x: {2, 4}\n"
         "def is_even(n):\n    return False\nhalf = is_even\ndef evens(xs):\n    return []")


@pytest.mark.parametrize("program,expected", [
    (RIGHT, 1.0),
    (CONSTANT, 2 / 6),    # is_even(4) holds; evens([2]) == evens([2, 3]) holds for any constant
    (FORGE_ONES, 0.0),    # an "all passed" record: the host asked for values, not verdicts
    (FORGE_TRUE, 2 / 6),  # "True" for every value it is asked: no better than CONSTANT
    (PATCH, 2 / 6),       # patched len/set never reach the host: only not is_even(7), evens == evens
    ("raise SystemExit(0)", 0.0),
    ("import sys\nsys.modules['os']._exit(0)", 0.0),  # exits before any value is computed
], ids=["right", "constant", "forged-ones", "forged-true", "patched-builtins", "system-exit", "early-exit"])
def test_every_assert_is_judged_on_the_host(sb, program, expected):
    assert sb.score_programs([(program, FORMS)]) == [pytest.approx(expected)]


def test_host_checks_send_the_child_only_what_touches_the_answer():
    from clbench.host_checks import host_check, verdict

    h = host_check("assert math.isclose(half(3), 1.5, rel_tol=1e-9) and sorted(f(x)) == [1, 2]")
    assert h.requests == ("half(3)", "f(x)")
    assert verdict(h, ["1.5", "[2, 1]"]) and not verdict(h, ["1.5", "[3]"]) and not verdict(h, [None, "[1, 2]"])
    assert host_check("assert g().a in (3, 4)").requests == ("g().a",)
    # work the host could not bound on a hostile value goes to the child whole
    assert host_check("assert f(x) * 10 ** 9 == 0").requests == ("f(x) * 10 ** 9",)
    assert host_check("assert list(range(f(x))) == []").requests == ("range(f(x))",)
    assert host_check("assert math.factorial(f(x)) == 1").requests == ("math.factorial(f(x))",)
    assert host_check("assert sorted(f(x), key=lambda t: t * 9 ** 9) == []").requests == (
        "sorted(f(x), key=lambda t: t * 9 ** 9)",)  # a key that multiplies a hostile value
    assert host_check("assert sorted(f(x), key=lambda t: t[1]) == []").requests == ("f(x)",)
    assert host_check("assert all(f(i) == 2 * i for i in range(3))").requests == (
        "all((f(i) == 2 * i for i in range(3)))",)  # a generator has no plain value: the whole call
    assert host_check("assert sorted(xs, key=lambda t: g(t)) == [1]").requests == (
        "sorted(xs, key=lambda t: g(t))",)
    assert host_check("assert [f(i) for i in range(3)] == [0, 2, 4]").requests == ("[f(i) for i in range(3)]",)
    assert host_check("x = 1") is None and host_check("assert (") is None
    assert not verdict(host_check("assert f(1)"), ["__import__('os')"])  # not a literal


def test_program_mode_value_checks_keep_assert_semantics(sb):
    prog = ("import collections\nP = collections.namedtuple('P', 'a b')\n"
            "def f(x):\n    return collections.Counter(x)\ndef g():\n    return P(3, {1})\n")
    checks = ["assert f([1, 1, 2]) == {1: 2, 2: 1}", "assert g() == (3.0, {1})",
              "assert f([]) == {}", "assert g()[0] == True", "assert len(g()) == 2, 'msg'",
              "assert g().a in (3, 4)"]  # the last one is an ordinary check
    assert sb.score_programs([(prog, checks)]) == [pytest.approx(5 / 6)]
