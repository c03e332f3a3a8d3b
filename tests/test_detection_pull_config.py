"""pull: detections in QualysGuard.yaml, and the Qualys client's post() for the detection and KB calls."""
import textwrap

import httpx
import pytest

from qualys_connector import qgconfig
from qualys_connector.emulators.qualys.detectionmodel import DetectionModel
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.errors import ConfigError, QualysError
from qualys_connector.qualys.api import QualysClient
from qualys_connector.qualys.detections import DETECTION_PATH, DetectionPull, detection_form
from qualys_connector.qualys.knowledgebase import KnowledgeBase, KnowledgeBaseCache


def load(tmp_path, text):
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return qgconfig.load(str(path))


def test_report_is_the_default_and_detections_needs_no_template(tmp_path):
    cfg = load(tmp_path, "user_id: u\npassword: p\ntemplate_id: 1\n")
    assert (cfg.pull, cfg.page_size, cfg.full_resync) == ("report", 1000, False)
    cfg = load(tmp_path, "user_id: u\npassword: p\npull: Detections\npage_size: 250\nfull_resync: y\n")
    assert (cfg.pull, cfg.page_size, cfg.full_resync, cfg.template_id) == ("detections", 250, True, None)


def test_a_template_id_is_ignored_with_a_warning(tmp_path, caplog):
    cfg = load(tmp_path, "user_id: u\npassword: p\npull: detections\ntemplate_id: 42\n"
                         "scanner_name: 'Q {template_id}'\n")
    assert cfg.template_id is None and cfg.scanner_name == "Q detections"
    assert "template_id is ignored with pull: detections" in caplog.text


@pytest.mark.parametrize("text, key, words", [
    ("pull: scans\n", "pull", "is not report or detections"),
    ("pull: detections\nreport_file: r.xml\n", "report_file", "cannot be used with pull: detections"),
    ("pull: detections\npage_size: 0\n", "page_size", ""),
    ("pull: detections\npage_size: 2000000\n", "page_size", "hosts per page"),
    ("pull: detections\nfull_resync: maybe\n", "full_resync", ""),
])
def test_bad_detection_keys_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "user_id: u\npassword: p\n" + text)
    assert info.value.key == key and words in info.value.message


def test_the_client_post_retries_the_detection_and_kb_calls_like_every_call(tmp_path):
    model = DetectionModel.generate(25, detections_per_host=2)
    sleeps = []
    with QualysEmulator(users={"u": "p"}, detections=model) as qualys, \
            QualysClient(qualys.url, "u", "p", sleep=sleeps.append, jitter=lambda: 1) as client:
        qualys.inject("409-1960")
        qualys.inject("503")
        hosts = list(DetectionPull(client.post, detection_form(truncation_limit=10), tmpdir=str(tmp_path)))
        assert len(hosts) == len({h.id for h in model.hosts if any(d.status != "Fixed" for d in h.detections)})
        assert sleeps == [15, 10]
        qualys.inject("409-1960")
        with KnowledgeBaseCache(str(tmp_path / "kb.sqlite")) as cache:
            assert len(KnowledgeBase(client.post, cache, tmpdir=str(tmp_path)).lookup([10000, 10037])) == 2
        assert sleeps == [15, 10, 15] and len(qualys.state.kb_calls) == 1


def test_a_simple_return_error_sent_with_200_is_the_calls_error(tmp_path):
    body = b"<SIMPLE_RETURN><RESPONSE><CODE>1905</CODE><TEXT>bad parameter</TEXT></RESPONSE></SIMPLE_RETURN>"
    with QualysClient("https://qualysapi.example", "u", "p",
                      transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body))) as client:
        with pytest.raises(QualysError, match="refused the host detection pull: CODE 1905") as info:
            client.post(DETECTION_PATH, {"action": "list"}, str(tmp_path / "page.xml"))
    assert info.value.code == "1905"
