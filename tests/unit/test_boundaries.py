"""Design boundaries: the core never imports gRPC, and the public surface is pinned."""

import subprocess
import sys


def test_core_imports_without_grpc():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'grpc' or name.startswith(('grpc.', 'grpc_', 'cptrules.v1', 'cptrules.server',\n"
        "                                       'cptrules.client')):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib, pkgutil, cptrules\n"
        "for m in pkgutil.walk_packages(cptrules.__path__, 'cptrules.'):\n"
        "    if not m.name.startswith(('cptrules.server', 'cptrules.client', 'cptrules.v1',\n"
        "                              'cptrules.__main__')):\n"
        "        importlib.import_module(m.name)\n"
        "e = cptrules.Engine.load(check_data=False)\n"
        "print(e.answer('is 0556T permanent').intent)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "is_permanent"


def test_public_api():
    import cptrules

    assert sorted(cptrules.__all__) == sorted([
        "AnswerResult", "CodeNotFoundError", "CodeReport", "CptrulesError", "DataImportError",
        "Engine", "InvalidInputError", "MalformedCodeError", "Outcome", "QuestionTooLongError",
        "RuleFileErrors"])
