/* SPDX-License-Identifier: MIT */
#include "hvtest.h"
