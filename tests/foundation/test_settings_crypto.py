"""Settings precedence and the credential envelope (known answer, tampering, key file)."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from vpsagent import crypto
from vpsagent.errors import ConfigError, CredentialError
from vpsagent.secret import Secret
from vpsagent.settings import DEFAULT_MODEL, load_settings


def test_precedence_flag_env_file_default(tmp_path):
    home = tmp_path / "h"
    env = {"VPSAGENT_HOME": str(home)}
    s = load_settings(env)
    assert s.config_dir == home / "config" and s.data_dir == home / "data"
    assert s.database_url == f"sqlite:///{home / 'data' / 'vpsagent.db'}"
    assert s.model == DEFAULT_MODEL and s.sources["model"] == "default"

    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('model = "from-file"\ndatabase_url = "sqlite:////tmp/f.db"\n')
    s = load_settings(env)
    assert (s.model, s.sources["model"]) == ("from-file", "config file")
    s = load_settings({**env, "VPSAGENT_MODEL": "from-env"})
    assert (s.model, s.sources["model"]) == ("from-env", "env VPSAGENT_MODEL")
    s = load_settings({**env, "VPSAGENT_MODEL": "from-env"}, model="from-flag")
    assert (s.model, s.sources["model"]) == ("from-flag", "flag")
    assert s.database_url == "sqlite:////tmp/f.db"


def test_session_secret_is_accepted_and_masked(tmp_path):
    s = load_settings({"VPSAGENT_HOME": str(tmp_path), "SESSION_SECRET": "seed-secret-value-123"})
    assert s.secret_source == "SESSION_SECRET"
    assert "seed-secret" not in repr(s) and "seed-secret" not in str(s.secret)
    s = load_settings({"VPSAGENT_HOME": str(tmp_path), "SESSION_SECRET": "a" * 20, "VPSAGENT_SECRET": "b" * 20})
    assert s.secret_source == "VPSAGENT_SECRET"


def test_unknown_config_key_is_a_config_error(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("modle = 'typo'\n")
    with pytest.raises(ConfigError, match="modle"):
        load_settings({"VPSAGENT_HOME": str(tmp_path)})


def test_default_model_is_current_and_not_deprecated():
    from anthropic._data import DEPRECATED_MODELS

    assert DEFAULT_MODEL not in DEPRECATED_MODELS
    assert "sonnet" in DEFAULT_MODEL


# -- envelopes ----------------------------------------------------------------------------

KAT_SECRET = Secret("correct horse battery staple")
KAT_PARAMS = crypto.KdfParams(salt=bytes(range(16)), log_n=15, r=8, p=1)
KAT_NONCE = bytes(range(100, 112))
# Known answer: scrypt(N=2^15, r=8, p=1) of the secret and salt above, then AES-256-GCM of
# b"hunter2-password" with AAD "vpsagent:1:servers:7:password_enc". The test also recomputes
# both from the primitives, so a change of KDF, cipher or AAD layout cannot pass silently.
KAT_KEY_HEX = "7a8e34241db898d59175c696538c417467a975ffe569068425f16188d3159c58"
KAT_CIPHERTEXT_HEX = "d940be02911fea85d54da170f656cd2d330f3fca7aee78eae471400d43fdfd9f"


def test_known_answer_matches_independent_computation():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = hashlib.scrypt(b"correct horse battery staple", salt=bytes(range(16)), n=2**15, r=8, p=1,
                         maxmem=64 * 1024 * 1024, dklen=32)
    expected = AESGCM(key).encrypt(KAT_NONCE, b"hunter2-password", b"vpsagent:1:servers:7:password_enc")
    assert crypto.derive_key(KAT_SECRET, KAT_PARAMS) == key
    assert key.hex() == KAT_KEY_HEX and expected.hex() == KAT_CIPHERTEXT_HEX
    kr = crypto.Keyring(KAT_SECRET, KAT_PARAMS)
    env = crypto.Envelope(KAT_PARAMS, KAT_NONCE, expected).dumps()
    assert env.startswith("vpsenc$1$scrypt$15$8$1$")
    assert kr.decrypt(env, table="servers", record_id=7, field="password_enc").reveal_bytes() == b"hunter2-password"
    assert crypto.Envelope.loads(env).ciphertext.hex() == KAT_CIPHERTEXT_HEX
    assert len(expected) == len(b"hunter2-password") + 16  # ciphertext + GCM tag


def test_roundtrip_and_binding():
    kr = crypto.Keyring(Secret("s" * 24), crypto.new_params())
    env = kr.encrypt(b"pw-123", table="servers", record_id=1, field="password_enc")
    assert b"pw-123" not in env.encode()
    assert kr.decrypt(env, table="servers", record_id=1, field="password_enc").reveal_bytes() == b"pw-123"
    for table, rid, field in [("servers", 2, "password_enc"), ("servers", 1, "sudo_password_enc"),
                              ("github_integrations", 1, "password_enc")]:
        with pytest.raises(CredentialError, match="tampered"):
            kr.decrypt(env, table=table, record_id=rid, field=field)


def test_wrong_secret_and_tampering_fail_cleanly():
    params = crypto.new_params()
    env = crypto.Keyring(Secret("right" * 5), params).encrypt(b"x", table="t", record_id=1, field="f")
    with pytest.raises(CredentialError, match="wrong secret"):
        crypto.Keyring(Secret("wrong" * 5), params).decrypt(env, table="t", record_id=1, field="f")
    parts = env.split("$")
    flipped = bytearray(crypto._b64d(parts[8]))
    flipped[0] ^= 1
    tampered = "$".join(parts[:8] + [crypto._b64e(bytes(flipped))])
    kr = crypto.Keyring(Secret("right" * 5), params)
    with pytest.raises(CredentialError):
        kr.decrypt(tampered, table="t", record_id=1, field="f")
    for bad in ["", "garbage", env.replace("vpsenc$1", "vpsenc$9"), "$".join(parts[:8])]:
        with pytest.raises(CredentialError):
            kr.decrypt(bad, table="t", record_id=1, field="f")


def test_kdf_parameters_are_capped():
    huge = "$".join(["vpsenc", "1", "scrypt", "30", "8", "1", crypto._b64e(b"s" * 16),
                     crypto._b64e(b"n" * 12), crypto._b64e(b"c" * 32)])
    with pytest.raises(CredentialError, match="beyond"):
        crypto.Keyring(Secret("x" * 20), crypto.new_params()).decrypt(huge, table="t", record_id=1, field="f")


def test_key_is_derived_once_per_process_for_many_records():
    kr = crypto.Keyring(Secret("k" * 20), crypto.new_params())
    envs = [kr.encrypt(f"v{i}", table="servers", record_id=i, field="password_enc") for i in range(20)]
    for i, e in enumerate(envs):
        assert kr.decrypt(e, table="servers", record_id=i, field="password_enc").reveal_str() == f"v{i}"
    assert len(kr._keys) == 1


def test_key_file_created_0600_once_and_refused_when_readable(tmp_path):
    path = tmp_path / "cfg" / "secret.key"
    notes: list[str] = []
    s1 = crypto.load_or_create_key_file(path, notes.append)
    s2 = crypto.load_or_create_key_file(path, notes.append)
    assert s1 == s2 and len(s1.reveal_str()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # the directory it creates is owner-only too
    assert len(notes) == 1 and str(path) in notes[0]
    os.chmod(path, 0o644)
    with pytest.raises(CredentialError, match="readable by others"):
        crypto.load_or_create_key_file(path, notes.append)


def test_secret_never_prints():
    s = Secret("hunter2")
    assert str(s) == "***" and "hunter2" not in repr(s) and f"{s}" == "***"


def test_mask_url_hides_every_spelling_of_a_password():
    from vpsagent.settings import mask_url

    for url in ["postgresql://bob:Secr3t@h/db", "postgresql://bob@h/db?password=Secr3t&sslmode=require",
                "postgresql//bob:Secr3t@h/db", "postgresql://bob:Secr3t/x@h/db"]:
        assert "Secr3t" not in mask_url(url), url
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url("postgresql://bob:pw@h:5432/db") == "postgresql://bob:***@h:5432/db"
