// errors.h - the two kinds of failure every popgate program reports.
// InputError: what an operator gave us is wrong (bad field, bad config, bad
// usage); programs exit 2. OperationError: the input was fine but the work
// failed (database down, server refused); programs exit 1. Messages are
// complete sentences fragments that already name the account and the field.
#pragma once

#include <stdexcept>
#include <string>

namespace popgate
{

class InputError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

class OperationError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

} // namespace popgate
