// The one translation unit that compiles Boost.JSON's implementation (header-only mode).
#include <boost/json/src.hpp>
