"""Stand-in for ``comfy.utils.ProgressBar`` (same semantics, own code).

The bar reads the global hook once, when it is made; each update clamps to the total and calls
``hook(value, total, preview, node_id=...)``. In ComfyUI the hook is the server's, which also raises on Cancel.
"""
PROGRESS_BAR_HOOK = None


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total, self.current, self.node_id = total, 0, node_id
        self.hook = PROGRESS_BAR_HOOK

    def update_absolute(self, value, total=None, preview=None):
        self.total = self.total if total is None else total
        self.current = min(value, self.total)
        if self.hook:
            self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value):
        self.update_absolute(self.current + value)
