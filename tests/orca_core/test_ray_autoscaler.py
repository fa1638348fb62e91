"""How many Ray nodes waiting work needs (pure: no Ray started)."""

from orca_core.engines.ray_autoscaler import nodes_for

NODE = {"CPU": 2, "GPU": 0, "memory": float("inf"), "object_store_memory": float("inf")}


def test_bundles_fill_nodes_first_fit_largest_first():
    assert nodes_for([], NODE) == 0
    assert nodes_for([{"CPU": 1}] * 3, NODE) == 2
    assert nodes_for([{"CPU": 1}, {"CPU": 2}, {"CPU": 1}], NODE) == 2


def test_nodes_on_their_way_count_as_room():
    assert nodes_for([{"CPU": 1}] * 3, NODE, starting=1) == 1
    assert nodes_for([{"CPU": 1}] * 3, NODE, starting=2) == 0


def test_what_no_node_could_hold_needs_no_node():
    assert nodes_for([{"CPU": 4}, {"GPU": 1}, {"custom": 1}, {"CPU": 1}], NODE) == 1
