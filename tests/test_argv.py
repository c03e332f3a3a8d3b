"""Old Perl command lines keep working (README "qualys-connector")."""
import pytest

from qualys_connector.argv import normalize
from qualys_connector.cli import COMMON_OPTIONS, MULTI_OPTIONS
from qualys_connector.errors import UsageError


@pytest.mark.parametrize("argv", [
    ["-server=10.10.10.10"], ["-server", "10.10.10.10"], ["--server=10.10.10.10"],
    ["--server", "10.10.10.10"], ["-se=10.10.10.10"], ["-serv", "10.10.10.10"], ["-SERVER=10.10.10.10"],
])
def test_every_spelling_of_server(argv):
    assert normalize(argv, COMMON_OPTIONS) == ["--server=10.10.10.10"]


def test_the_guides_short_forms():
    argv = ["-c=Out.csv", "-pl=InputPlugins/QualysGuard.yaml", "-po=8307", "-pk=C.pkcs12", "-pa=x",
            "-i", "-sy", "-st", "-lo", "log.txt", "-le=3", "-se=fmc"]
    assert normalize(argv, COMMON_OPTIONS) == [
        "--csvfile=Out.csv", "--plugininfo=InputPlugins/QualysGuard.yaml", "--port=8307",
        "--pkcs12=C.pkcs12", "--password=x", "--ipv6", "--syslog", "--stderr", "--logfile=log.txt",
        "--level=3", "--server=fmc"]


def test_positional_plugin_and_process_multiple_options():
    assert normalize(["-multiinfo", "424242,535353", "-server=1.2.3.4", "csv"], MULTI_OPTIONS) == [
        "--multiinfo=424242,535353", "--server=1.2.3.4", "csv"]
    assert normalize(["-m=1,2", "-j=2"], MULTI_OPTIONS) == ["--multiinfo=1,2", "--jobs=2"]


def test_values_may_contain_equals_signs():
    assert normalize(["-pa=a=b"], COMMON_OPTIONS) == ["--password=a=b"]


@pytest.mark.parametrize("argv,message", [
    (["-s=1"], "ambiguous"), (["-bogus"], "unknown option"), (["-server"], "needs a value"),
    (["-ipv6=1"], "takes no value"),
])
def test_bad_spellings_are_usage_errors(argv, message):
    with pytest.raises(UsageError) as info:
        normalize(argv, COMMON_OPTIONS)
    assert message in str(info.value)
