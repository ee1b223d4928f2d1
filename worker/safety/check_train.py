"""
check_train.py: the static policy a worker applies to train.py before running code that someone
else's agent wrote. It only parses (ast); nothing it checks is ever imported or executed.

    python -I check_train.py FILE...     prints one JSON object: {"ok": bool, "violations": [...]}

Exit status: 0 when every file passes, 1 when one does not, 2 on a usage error.

The policy is an allow-list where it can be (imports, the few parts of os/sys/gc a trainer needs)
and a deny-list where it must be (torch is huge, so its file, process and network corners are named
and refused). It is a tripwire for the obvious and the known escape tricks, not a sandbox: the
worker also runs the trainer without network and with a scrubbed environment. See worker/README.md.
"""

import ast
import json
import sys

# Modules train.py may import. Restricted ones (below) may only be used through the listed names.
FREE_MODULES = {
    "__future__", "math", "time", "dataclasses", "functools", "itertools", "typing", "collections",
    "contextlib", "warnings", "random", "copy", "enum", "abc", "numbers", "heapq", "bisect", "re",
    "statistics", "textwrap",
}
RESTRICTED = {
    "os": {"environ", "getenv", "path", "cpu_count", "sep", "getpid"},
    "os.path": {"join", "expanduser", "exists", "isfile", "isdir", "dirname", "basename", "abspath", "splitext", "split"},
    "os.environ": {"get", "setdefault", "keys", "items", "values", "copy"},
    "sys": {"stdout", "stderr", "exit", "platform", "version", "version_info", "argv", "maxsize", "float_info"},
    "sys.stdout": {"write", "flush", "isatty"},
    "sys.stderr": {"write", "flush", "isatty"},
    "gc": {"collect", "freeze", "unfreeze", "disable", "enable", "isenabled", "get_count", "get_threshold", "set_threshold", "get_freeze_count"},
    # The locked data/metric module: its loaders and constants, not its downloaders or writers.
    "prepare": {"PROFILE", "PROFILES", "SEED", "SEQ_LEN", "TIME_BUDGET", "EVAL_TOKENS", "VOCAB_SIZE", "Data", "DataError",
                "load_data", "make_loader", "save_model", "CHECKPOINT", "current_data_dir"},
}
# Environment variables train.py may set (inherited by torch's compiler subprocesses: CXX or PATH
# there would choose what runs).
ENV_WRITABLE = {
    "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "PYTORCH_CUDA_ALLOC_CONF", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG", "TOKENIZERS_PARALLELISM", "PYTORCH_ENABLE_MPS_FALLBACK",
    "TORCHINDUCTOR_AUTOGRAD_CACHE_ALLOW_CUSTOM_AUTOGRAD",  # a cache switch: warm starts with a custom autograd.Function
}
# torch corners that load, save, compile native code, spawn processes or talk to the network.
TORCH_DENIED = (
    "torch.hub", "torch.onnx", "torch.distributed", "torch.multiprocessing", "torch.profiler", "torch.autograd.profiler",
    "torch.package", "torch.serialization", "torch.export", "torch.utils.cpp_extension", "torch.utils.benchmark",
    "torch.utils.collect_env", "torch.utils.tensorboard", "torch.utils.model_zoo", "torch.utils.hipify",
    "torch.utils.bottleneck", "torch.utils.data.datapipes", "torch.testing", "torch.cuda.memory",
)
# Private torch names a trainer legitimately uses (train.py's oneDNN path, compiled models, fused ops).
PRIVATE_OK = {"_C", "_nn", "_dynamo", "_orig_mod", "_foreach_add_", "_foreach_mul_", "_foreach_lerp_", "_foreach_sqrt", "_foreach_div_"}
# torch._inductor.config is where speed flags live, but also the C++ compiler command: only these.
INDUCTOR_OK = {"coordinate_descent_tuning", "epilogue_fusion", "max_autotune", "max_autotune_gemm", "fx_graph_cache",
               "freezing", "triton.unique_kernel_names", "triton.cudagraphs", "shape_padding", "aggressive_fusion"}
# Attribute names refused on any object: file, process, serialization and import machinery.
ATTR_DENIED = {
    "load", "save", "load_library", "load_inline", "from_file", "tofile", "dump", "dumps", "loads", "fileno", "raw",
    "system", "popen", "Popen", "spawn", "spawnv", "execv", "execve", "fork", "kill", "remove", "unlink", "rmdir",
    "hub", "onnx", "distributed", "multiprocessing", "profiler", "package", "serialization", "export",
    "cpp_extension", "collect_env", "tensorboard", "model_zoo", "hipify", "bottleneck", "datapipes", "Timer",
    "valgrind_wrapper", "cpp_jit", "compile_timeit_template", "compile_callgrind_template",
    "get_type_hints", "ForwardRef", "import_module", "exec_module", "modules",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code", "cr_frame", "cr_code",
    "ag_frame", "ag_code", "tb_frame", "tb_next", "co_code", "func_globals", "func_code",
}
# Dunders a trainer may touch; all others (__class__, __globals__, __subclasses__, __dict__...) are
# the classic ways out of any restriction.
DUNDER_OK = {
    "__init__", "__name__", "__doc__", "__version__", "__config__", "__call__", "__enter__", "__exit__", "__len__",
    "__iter__", "__next__", "__getitem__", "__setitem__", "__contains__", "__repr__", "__str__", "__qualname__",
}
# Builtins refused wherever they appear (not only when called: `f = eval` is as bad).
NAME_DENIED = {
    "eval", "exec", "compile", "open", "__import__", "globals", "locals", "vars", "breakpoint", "input", "help",
    "type", "memoryview", "__builtins__", "__loader__", "__spec__", "__build_class__", "license", "credits", "copyright",
}
NAMED_ATTR_BUILTINS = {"getattr", "setattr", "delattr"}


def is_dunder(name):
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class Checker(ast.NodeVisitor):
    def __init__(self, tree):
        self.violations = []
        self.aliases = {}  # local name -> dotted module it stands for ("np" -> "numpy")
        self.libc = None  # the one name bound to ctypes.CDLL(None)
        self.ctypes_ok = set()  # ids of nodes that are part of the one allowed ctypes use
        self.defined = set()  # private names this file defines itself (methods, self._x attributes)
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                child.parent = node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                self.defined.add(node.attr)
        self.collect_imports(tree)
        self.collect_ctypes(tree)

    def fail(self, node, message):
        self.violations.append({"line": getattr(node, "lineno", 0), "message": message})

    # -- imports -------------------------------------------------------------------------------

    def module_allowed(self, name):
        if name in FREE_MODULES or name in RESTRICTED or name == "ctypes" or name == "torch._inductor.config":
            return True
        if name == "torch" or name.startswith("torch."):
            if any(name == d or name.startswith(d + ".") for d in TORCH_DENIED):
                return False
            parts = name.split(".")[1:]
            return all(not p.startswith("_") or p in PRIVATE_OK for p in parts) and name != "torch._C"
        return False

    def collect_imports(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = node.module + "." + a.name

    def visit_Import(self, node):
        for a in node.names:
            if not self.module_allowed(a.name):
                self.fail(node, "import of %s is not allowed (allowed: torch, prepare, os and sys in part, gc, %s)" % (a.name, ", ".join(sorted(FREE_MODULES - {"__future__"}))))
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.level:
            return self.fail(node, "relative imports are not allowed")
        module = node.module or ""
        if not self.module_allowed(module):
            return self.fail(node, "import from %s is not allowed" % module)
        if module == "ctypes":
            return self.fail(node, "ctypes is allowed only as `ctypes.CDLL(None).mallopt(...)`")
        for a in node.names:
            if a.name == "*":
                self.fail(node, "`from %s import *` is not allowed: name what you use" % module)
            elif module in RESTRICTED and a.name not in RESTRICTED[module]:
                self.fail(node, "%s.%s is not allowed" % (module, a.name))
            elif module.startswith("torch"):
                self.check_torch_path(node, module + "." + a.name)
                self.check_attr_name(node, a.name, on_module=True)
            else:
                self.check_attr_name(node, a.name, on_module=True)

    # -- ctypes: exactly `libc = ctypes.CDLL(None)` and `libc.mallopt(<int>, <int>)` -------------

    def collect_ctypes(self, tree):
        ctypes_names = {k for k, v in self.aliases.items() if v == "ctypes"}
        if not ctypes_names:
            return
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
                    and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id in ctypes_names
                    and node.value.func.attr == "CDLL" and len(node.value.args) == 1 and not node.value.keywords
                    and isinstance(node.value.args[0], ast.Constant) and node.value.args[0].value is None):
                if self.libc is not None:
                    self.fail(node, "ctypes.CDLL(None) may be bound only once")
                self.libc = node.targets[0].id
                self.ctypes_ok.update({id(node.value.func.value), id(node.targets[0])})

    def int_expr(self, node):
        if isinstance(node, ast.Constant):
            return type(node.value) is int
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self.int_expr(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.LShift, ast.Mult, ast.Add, ast.Pow)):
            return self.int_expr(node.left) and self.int_expr(node.right)
        return False

    # -- names and attributes ------------------------------------------------------------------

    def check_attr_name(self, node, name, on_module=False, owner=None):
        if name in ATTR_DENIED:
            self.fail(node, "`.%s` is not allowed (file, process, serialization or interpreter internals)" % name)
        elif is_dunder(name):
            if name not in DUNDER_OK:
                self.fail(node, "`.%s` is not allowed: dunder attributes are how code escapes a policy" % name)
        elif name.startswith("_") and name not in PRIVATE_OK:
            own = not on_module and name in self.defined and isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if not own:
                self.fail(node, "private attribute `.%s` is not allowed outside this file's own classes" % name)

    def dotted(self, node):
        """`os.path.join` for an attribute chain rooted at an imported module, else None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id]] + parts[::-1])
        return None

    def check_torch_path(self, node, path):
        if path == "torch._inductor" or path.startswith("torch._inductor."):
            rest = path[len("torch._inductor.config."):] if path.startswith("torch._inductor.config.") else None
            if rest is None or not any(rest == ok or rest.startswith(ok + ".") for ok in INDUCTOR_OK) or rest.startswith("triton.") and rest not in INDUCTOR_OK:
                return self.fail(node, "%s is not allowed (of torch._inductor only these config flags: %s)" % (path, ", ".join(sorted(INDUCTOR_OK))))
            return None
        for d in TORCH_DENIED:
            if path == d or path.startswith(d + "."):
                return self.fail(node, "%s is not allowed (files, processes, native code or network)" % d)
        for part in path.split(".")[1:]:
            if part.startswith("_") and not is_dunder(part) and part not in PRIVATE_OK:
                return self.fail(node, "%s is not allowed: private torch internals" % path)

    def check_module_path(self, node, path):
        """Checks `module.attr[.attr...]` against the restricted modules' allow-lists."""
        root = path.split(".")[0]
        if root in ("torch",):
            return self.check_torch_path(node, path)
        if root == "ctypes":
            return self.fail(node, "ctypes is allowed only as `libc = ctypes.CDLL(None)` followed by `libc.mallopt(...)`")
        for prefix in sorted(RESTRICTED, key=len, reverse=True):
            if path.startswith(prefix + "."):
                rest = path[len(prefix) + 1:].split(".")[0]
                if rest not in RESTRICTED[prefix]:
                    return self.fail(node, "%s.%s is not allowed (allowed: %s)" % (prefix, rest, ", ".join(sorted(RESTRICTED[prefix]))))
                deeper = prefix + "." + rest
                if deeper in RESTRICTED and path != deeper:
                    return self.check_module_path(node, path)  # e.g. os.path.join: checked against os.path
                return None
        return None

    def visit_Attribute(self, node):
        parent = getattr(node, "parent", None)
        # Check each chain once, from its outermost attribute.
        outermost = not (isinstance(parent, ast.Attribute) and parent.value is node)
        if id(node.value) in self.ctypes_ok:
            pass
        elif isinstance(node.value, ast.Name) and node.value.id == self.libc:
            call = parent
            if not (node.attr == "mallopt" and isinstance(call, ast.Call) and call.func is node and not call.keywords
                    and all(self.int_expr(a) for a in call.args)):
                self.fail(node, "the ctypes handle may only call mallopt with integer constants")
        elif node.attr == "_inductor":
            # Only as torch._inductor written out, so the path check below sees what follows.
            if self.dotted(node) != "torch._inductor" or outermost:
                self.fail(node, "`._inductor` is allowed only as torch._inductor.config.<flag>")
        else:
            self.check_attr_name(node, node.attr, owner=node.value)
            path = self.dotted(node)
            if path and outermost:
                self.check_module_path(node, path)
            if path == "os.environ":
                self.check_environ_use(node, parent)
        self.generic_visit(node)

    def check_environ_use(self, node, parent):
        def constant_key(k):
            return isinstance(k, ast.Constant) and isinstance(k.value, str)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            key = parent.slice.value if type(parent.slice).__name__ == "Index" else parent.slice  # Index: Python 3.8
            if isinstance(parent.ctx, ast.Load):
                return
            if isinstance(parent.ctx, ast.Store) and constant_key(key) and key.value in ENV_WRITABLE:
                return
            return self.fail(node, "train.py may only set these environment variables: %s" % ", ".join(sorted(ENV_WRITABLE)))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            call = getattr(parent, "parent", None)
            if parent.attr == "setdefault":
                if isinstance(call, ast.Call) and call.args and constant_key(call.args[0]) and call.args[0].value in ENV_WRITABLE:
                    return
                return self.fail(node, "train.py may only set these environment variables: %s" % ", ".join(sorted(ENV_WRITABLE)))
            return  # other methods were checked against the allow-list
        if isinstance(parent, ast.Compare) and node in parent.comparators:
            return  # `"X" in os.environ`
        self.fail(node, "os.environ may only be read (`os.environ.get`, `os.environ[...]`) or set with a constant key")

    def visit_Name(self, node):
        parent = getattr(node, "parent", None)
        if node.id in NAME_DENIED:
            self.fail(node, "`%s` is not allowed" % node.id)
        elif node.id in NAMED_ATTR_BUILTINS:
            call = parent
            if not (isinstance(call, ast.Call) and call.func is node and len(call.args) >= 2):
                self.fail(node, "`%s` may only be called directly, with a constant attribute name" % node.id)
            else:
                name = call.args[1]
                if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                    self.fail(node, "`%s` needs a constant attribute name" % node.id)
                else:
                    self.check_attr_name(node, name.value, owner=call.args[0])
                    path = self.dotted(call.args[0])
                    if path:
                        self.check_module_path(node, path + "." + name.value)
        elif node.id == self.libc and id(node) not in self.ctypes_ok:
            if not (isinstance(parent, ast.Attribute) and parent.value is node):
                self.fail(node, "the ctypes handle may only call mallopt")
        elif node.id in self.aliases and id(node) not in self.ctypes_ok and isinstance(node.ctx, ast.Load):
            module = self.aliases[node.id]
            used_as_value = not (isinstance(parent, ast.Attribute) and parent.value is node)
            if module == "os.environ":
                self.check_environ_use(node, parent)
            elif used_as_value and (module == "ctypes" or module.startswith("torch._inductor") or (module in RESTRICTED and module not in ("sys.stdout", "sys.stderr"))):
                self.fail(node, "%s may only be used as %s.<name> with an allowed name" % (module, node.id))
        if node.id in ("self", "cls") and isinstance(node.ctx, ast.Store):
            self.fail(node, "`%s` may not be reassigned" % node.id)
        self.generic_visit(node)

    # -- statements that have no place in a trainer --------------------------------------------

    def visit_Match(self, node):
        self.fail(node, "`match` statements are not allowed (class patterns read arbitrary attributes)")

    def check_annotation(self, ann):
        if ann is None:
            return
        for n in ast.walk(ann):
            if isinstance(n, ast.Constant) and isinstance(n.value, str):
                self.fail(n, "string annotations are not allowed (typing evaluates them as code)")

    def visit_arg(self, node):
        self.check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self.check_annotation(node.returns)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node):
        self.check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_Call(self, node):
        # torch.compile(options=...) sets inductor's config, which names the C++ compiler it runs.
        if isinstance(node.func, ast.Attribute) and node.func.attr == "compile" and any(k.arg == "options" for k in node.keywords):
            self.fail(node, "compile(options=...) is not allowed (it can choose the compiler command)")
        self.generic_visit(node)


def check_source(source, filename="train.py"):
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        return [{"line": e.lineno or 0, "message": "does not parse: %s" % e.msg}]
    checker = Checker(tree)
    checker.visit(tree)
    seen, out = set(), []
    for v in sorted(checker.violations, key=lambda v: v["line"]):
        key = (v["line"], v["message"])
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def main(argv):
    if not argv:
        print("usage: check_train.py FILE...", file=sys.stderr)
        return 2
    violations = []
    for path in argv:
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read()
        except (OSError, UnicodeDecodeError) as e:
            violations.append({"file": path, "line": 0, "message": "cannot read: %s" % e})
            continue
        for v in check_source(source, path):
            violations.append(dict(v, file=path.replace("\\", "/").split("/")[-1]))
    print(json.dumps({"ok": not violations, "violations": violations}))
    return 0 if not violations else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
