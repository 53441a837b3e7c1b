#include "snapshots/backend.h"
