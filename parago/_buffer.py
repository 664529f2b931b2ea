
class Buffer: pass
