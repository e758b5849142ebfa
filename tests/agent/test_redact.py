

def test_kubeconfig_key_material_is_redacted():
    from vpsagent.redact import Redactor

    kube = "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==\n"
    out = Redactor().redact(kube)
    assert "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ" not in out and "client-key-data" in out
