"""The ports handed to services a test or a local stack starts."""

from mlxhub.embedded import LISTEN_PORTS, free_port


def test_ports_handed_out_before_any_is_bound_are_all_different():
    # A stack picks its four services' ports before any of them binds: the same port twice would
    # make one service fail to start. 1,500 picks among ~12,800 ports would repeat one almost surely.
    ports = [free_port() for _ in range(1500)]
    assert len(set(ports)) == len(ports)
    assert all(port in LISTEN_PORTS for port in ports)
