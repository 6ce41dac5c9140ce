"""fashion/names.py: the names several modules need, in a module that imports none of the library, so that
reading params.yaml does not make every stage depend on the modules that act on the names."""

from fashion.features.backbones import APPLICATIONS
from fashion.names import BACKBONES, BLOCKS
from tests.helpers import REPO
from tests.test_dvc_deps import closure, direct_imports


def test_the_names_module_imports_nothing_of_the_library():
    assert direct_imports(REPO, REPO / "fashion/names.py") == set()


def test_reading_params_runs_none_of_the_modules_that_act_on_the_names():
    runs = closure(REPO, "fashion/params.py")
    assert not runs & {"fashion/features/backbones.py", "fashion/data/recipes.py", "fashion/data/locate.py"}, runs


def test_every_backbone_named_has_an_application_and_a_block_count():
    assert list(APPLICATIONS) == list(BACKBONES) and set(BLOCKS) == set(BACKBONES)
