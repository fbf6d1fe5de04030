"""Maintenance work orders to the CMMS. Interface (the CMMS slice fills it in):

work_order_create(*, data: dict, actor) -> MaintenanceWorkOrder
work_order_for_alarm(*, alarm_id: int, actor=None) -> MaintenanceWorkOrder
    At most one open work order per alarm (returns the open one).
work_order_deliver(*, work_order_id: int) -> bool   # one attempt, logged
"""
