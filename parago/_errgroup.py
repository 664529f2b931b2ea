
class ErrGroup: pass
